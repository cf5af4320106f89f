-- One row per roster case (policy.md §1, household kind ROSTER). Members are the case's roster
-- persons except those the registry reports DECEASED, MOVED_OUT or CANCELLED; persons missing
-- from the registry stay members. No area parameter decides anything here:
-- fct_roster_households adds the standard.
with

roster as (select * from mca_assistance_roster),
persons as (select * from int_persons),
residential_properties as (select * from int_residential_properties),

cases as (
    -- all rows of a case agree on these (the gate quarantines a case that does not)
    select
        case_id,
        any_value(program) as program,
        any_value(county_code) as county_code,
        bool_or(single_person) as single_person,
        count(*) as roster_rows,
        count(*) filter (where relation = 'HEAD') as heads,
        min(id_number) filter (where relation = 'HEAD') as head_id
    from roster
    group by case_id
),

members as (
    select *
    from persons
    where case_id is not null
        and (registry_status is null or registry_status = 'ACTIVE')
),

residential as (
    -- distinct ACTIVE residential properties across the members: one flat owned by two members
    -- counts once
    select members.case_id, count(distinct residential_properties.property_id)
        as residential_properties
    from members
    join residential_properties using (id_number)
    group by members.case_id
),

summed as (
    select
        case_id,
        count(*) as size,
        sum(monthly_income)::decimal(18, 2) as household_income,
        sum(oop_12m)::decimal(18, 2) as household_oop_12m,
        max(max_vehicle_value) as max_vehicle_value,
        bool_or(business_failure) as business_failure,
        bool_or(commercial_property) as commercial_property,
        bool_or(gradual_exit_until >= $quarter_end::date) as in_gradual_exit,
        min(id_number) as smallest_member,
        list(id_number order by id_number) as member_ids,
        to_json(list(
            json_object(
                'id_masked', mask_id(id_number),
                'relation', roster_relation,
                'age', age,
                'monthly_income', monthly_income,
                'oop_12m', oop_12m,
                'gradual_exit_until', gradual_exit_until
            ) order by id_number)
        ) as members
    from members
    group by case_id
)

select
    cases.case_id as household_id,
    'ROSTER' as household_source,
    cases.program,
    cases.county_code,
    cases.single_person,
    cases.roster_rows,
    cases.heads,
    cases.head_id,
    -- the person a household warning is shown under (outputs.md §1 id_number)
    case
        when cases.heads = 1 and list_contains(summed.member_ids, cases.head_id)
            then cases.head_id
        else summed.smallest_member
    end as display_id,
    coalesce(summed.size, 0) as size,
    coalesce(summed.household_income, 0)::decimal(18, 2) as household_income,
    coalesce(summed.household_oop_12m, 0)::decimal(18, 2) as household_oop_12m,
    summed.max_vehicle_value,
    coalesce(summed.business_failure, false) as business_failure,
    coalesce(residential.residential_properties, 0) as residential_properties,
    coalesce(summed.commercial_property, false) as commercial_property,
    coalesce(summed.in_gradual_exit, false) as in_gradual_exit,
    summed.member_ids,
    coalesce(summed.members, '[]'::json) as members
from cases
left join summed using (case_id)
left join residential using (case_id)
