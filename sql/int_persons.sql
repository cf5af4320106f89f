-- One row per person the rules may look at: every roster person, and every registry person
-- (any status) of a registry household that holds a roster person or someone with a hardship
-- signal. Everybody else can raise no warning: PNI and NLE rules start from the roster, NE and
-- HWP rules from a hardship signal or the roster (policy.md §2). Everything about a person that
-- no area or age parameter decides: fct_persons adds the standard and the tekun age on top, so a
-- reform of those (policy/whatif.py) does not build this model again.
with

roster as (select * from mca_assistance_roster),
registry as (select * from mps_residents),
signals as (select * from int_person_signals),
income as (select * from int_person_income),
assets as (select * from int_person_assets),

focus_households as (
    select distinct registry.hukou_no
    from registry
    where registry.id_number in (select id_number from roster)
        or registry.id_number in (select id_number from signals where has_hardship_signal)
),

people as (
    select id_number from registry where hukou_no in (select hukou_no from focus_households)
    union
    select id_number from roster
),

joined as (
    select
        people.id_number,
        coalesce(registry.name, roster.name) as name,
        registry.id_number is not null as in_registry,
        registry.status as registry_status,
        registry.status_date as registry_status_date,
        registry.hukou_no,
        registry.relation as registry_relation,
        registry.county_code as registry_county,
        registry.residence_type,
        -- from the ID number when the registry does not know the person (policy.md §1 age)
        coalesce(registry.birth_date, id_birth_date(people.id_number)) as birth_date,
        roster.case_id,
        roster.relation as roster_relation,
        roster.county_code as roster_county,
        roster.program,
        roster.single_person,
        roster.gradual_exit_until,
        coalesce(roster.other_income_monthly, 0)::decimal(18, 2) as other_income_monthly,
        coalesce(income.wage_income, 0)::decimal(18, 2) as wage_income,
        coalesce(income.pension_income, 0)::decimal(18, 2) as pension_income,
        coalesce(income.unemployment_benefit, 0)::decimal(18, 2) as unemployment_benefit,
        coalesce(signals.oop_12m, 0)::decimal(18, 2) as oop_12m,
        coalesce(signals.is_seriously_ill, false) as is_seriously_ill,
        coalesce(signals.has_valid_certificate, false) as has_valid_certificate,
        signals.disability_grade,
        signals.disability_type,
        coalesce(signals.is_severely_disabled, false) as is_severely_disabled,
        coalesce(signals.care_level_severe, false) as care_level_severe,
        coalesce(signals.has_hardship_signal, false) as has_hardship_signal,
        coalesce(signals.has_severe_hardship_signal, false) as has_severe_hardship_signal,
        coalesce(signals.risk_present, false) as risk_present,
        coalesce(signals.unemployment_active, false) as unemployment_active,
        coalesce(signals.house_severely_damaged, false) as house_severely_damaged,
        coalesce(signals.house_collapsed, false) as house_collapsed,
        assets.max_vehicle_value,
        coalesce(assets.business_failure, false) as business_failure,
        assets.max_business_capital,
        coalesce(assets.residential_properties, 0) as residential_properties,
        coalesce(assets.commercial_property, false) as commercial_property
    from people
    left join registry using (id_number)
    left join roster using (id_number)
    left join income using (id_number)
    left join signals using (id_number)
    left join assets using (id_number)
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
    completed_years(birth_date, $quarter_end::date) as age,
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
    (wage_income + pension_income + unemployment_benefit + other_income_monthly)::decimal(18, 2)
        as monthly_income,
    oop_12m,
    is_seriously_ill,
    has_valid_certificate,
    disability_grade,
    disability_type,
    is_severely_disabled,
    care_level_severe,
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
    commercial_property
from joined
