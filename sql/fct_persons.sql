-- One row per person the rules may look at (int_persons, which says who), with what the area
-- and age parameters decide about them: the dibao standard that applies to the person and
-- whether they are a care-dependent elderly person. Kept apart from int_persons so that a reform
-- of those parameters (policy/whatif.py) builds this thin layer again, not the person join.
with

persons as (select * from int_persons),
standards as (select * from county_standards),

standard_applied as (
    select
        persons.*,
        -- a person's standard: the county of their roster case, else their registry county
        coalesce(roster_standard.dibao_standard, registry_standard.dibao_standard)
            as standard
    from persons
    left join standards as roster_standard on roster_standard.county_code = persons.roster_county
    left join standards as registry_standard
        on registry_standard.county_code = persons.registry_county
)

select
    id_number,
    name,
    in_registry,
    registry_status,
    registry_status_date,
    hukou_no,
    registry_relation,
    registry_county,
    residence_type,
    birth_date,
    age,
    case_id,
    roster_relation,
    roster_county,
    program,
    single_person,
    gradual_exit_until,
    other_income_monthly,
    wage_income,
    pension_income,
    unemployment_benefit,
    monthly_income,
    oop_12m,
    is_seriously_ill,
    has_valid_certificate,
    disability_grade,
    disability_type,
    is_severely_disabled,
    -- 失能失智老年人: the seed's 老年人 are 60 and over, the age tekun_elderly_age also holds
    care_level_severe and age >= $tekun_elderly_age as is_care_dependent_elderly,
    has_hardship_signal,
    has_severe_hardship_signal,
    risk_present,
    unemployment_active,
    house_severely_damaged,
    house_collapsed,
    max_vehicle_value,
    business_failure,
    max_business_capital,
    residential_properties,
    commercial_property,
    standard
from standard_applied
