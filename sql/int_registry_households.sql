-- One row per registry household (hukou_no) that fct_persons holds (policy.md §1, household kind
-- REGISTRY). Members are its ACTIVE registry persons; the county is the members' most frequent
-- county_code, ties to the smallest code. `is_covered`: an ACTIVE member appears in the roster.
-- No parameter decides anything here: fct_registry_households adds the standard.
with

persons as (select * from int_persons),
residential_properties as (select * from int_residential_properties),

members as (
    select * from persons where hukou_no is not null and registry_status = 'ACTIVE'
),

counties as (
    select hukou_no, registry_county as county_code
    from (
        select
            hukou_no,
            registry_county,
            row_number() over (
                partition by hukou_no order by count(*) desc, registry_county
            ) as rank
        from members
        group by hukou_no, registry_county
    )
    where rank = 1
),

residential as (
    select members.hukou_no, count(distinct residential_properties.property_id)
        as residential_properties
    from members
    join residential_properties using (id_number)
    group by members.hukou_no
),

summed as (
    select
        hukou_no,
        count(*) as size,
        bool_or(case_id is not null) as is_covered,
        bool_or(has_hardship_signal) as has_hardship_signal,
        bool_or(has_severe_hardship_signal) as has_severe_hardship_signal,
        sum(monthly_income)::decimal(18, 2) as household_income,
        sum(oop_12m)::decimal(18, 2) as household_oop_12m,
        max(max_vehicle_value) as max_vehicle_value,
        bool_or(business_failure) as business_failure,
        bool_or(commercial_property) as commercial_property,
        count(*) filter (where registry_relation = 'HEAD') as heads,
        min(id_number) filter (where registry_relation = 'HEAD') as head_id,
        min(id_number) as smallest_member,
        list(id_number order by id_number) as member_ids,
        to_json(list(
            json_object(
                'id_masked', mask_id(id_number),
                'relation', registry_relation,
                'age', age,
                'monthly_income', monthly_income,
                'oop_12m', oop_12m,
                'has_hardship_signal', has_hardship_signal,
                'has_severe_hardship_signal', has_severe_hardship_signal
            ) order by id_number)
        ) as members
    from members
    group by hukou_no
)

select
    summed.hukou_no as household_id,
    'REGISTRY' as household_source,
    counties.county_code,
    case when summed.heads = 1 then summed.head_id else summed.smallest_member end
        as display_id,
    summed.size,
    summed.is_covered,
    summed.has_hardship_signal,
    summed.has_severe_hardship_signal,
    summed.household_income,
    summed.household_oop_12m,
    summed.max_vehicle_value,
    summed.business_failure,
    coalesce(residential.residential_properties, 0) as residential_properties,
    summed.commercial_property,
    summed.member_ids,
    summed.members
from summed
join counties using (hukou_no)
left join residential using (hukou_no)
