-- One row per person with a hardship-relevant record: the signal facts of policy.md §1.
-- Settlements and disasters are the rows of the twelve-month window W (already limited to the
-- quarters whose extract was accepted); the other extracts are snapshots at E.
with

settlements as (select * from nhsa_settlements),
certificates as (select * from cdpf_disability_certificates),
at_risk_households as (select * from mara_at_risk_households),
unemployment_registrations as (select * from hrss_unemployment_registrations),
disaster_victims as (select * from mem_disaster_victims),
care_assessments as (select * from mca_care_assessments),

settled as (
    select
        id_number,
        sum(out_of_pocket) as oop_12m,
        bool_or(critical_illness_paid > 0) as is_seriously_ill
    from settlements
    group by id_number
),

certified as (
    -- 重度残疾: grade 1–2, or grade 3 of an intellectual or mental disability
    select
        id_number,
        grade as disability_grade,
        disability_type,
        grade <= 2 or (grade = 3 and disability_type in ('INTELLECTUAL', 'MENTAL'))
            as is_severely_disabled
    from certificates
    where status = 'VALID'
),

at_risk as (
    select id_number from at_risk_households where risk_status = 'RISK_PRESENT'
),

unemployed as (
    select id_number from unemployment_registrations where status = 'ACTIVE'
),

struck as (
    select
        id_number,
        bool_or(house_damage in ('SEVERE', 'COLLAPSED')) as house_severely_damaged,
        bool_or(house_damage = 'COLLAPSED') as house_collapsed
    from disaster_victims
    group by id_number
),

assessed as (
    select id_number, level = 'SEVERE' as care_level_severe from care_assessments
),

people as (
    select id_number from settled
    union select id_number from certified
    union select id_number from at_risk
    union select id_number from unemployed
    union select id_number from struck
    union select id_number from assessed
),

signals as (
    select
        people.id_number,
        coalesce(settled.oop_12m, 0)::decimal(18, 2) as oop_12m,
        coalesce(settled.is_seriously_ill, false) as is_seriously_ill,
        certified.id_number is not null as has_valid_certificate,
        certified.disability_grade,
        certified.disability_type,
        coalesce(certified.is_severely_disabled, false) as is_severely_disabled,
        at_risk.id_number is not null as risk_present,
        unemployed.id_number is not null as unemployment_active,
        coalesce(struck.house_severely_damaged, false) as house_severely_damaged,
        coalesce(struck.house_collapsed, false) as house_collapsed,
        coalesce(assessed.care_level_severe, false) as care_level_severe
    from people
    left join settled using (id_number)
    left join certified using (id_number)
    left join at_risk using (id_number)
    left join unemployed using (id_number)
    left join struck using (id_number)
    left join assessed using (id_number)
)

select
    id_number,
    oop_12m,
    is_seriously_ill,
    has_valid_certificate,
    disability_grade,
    disability_type,
    is_severely_disabled,
    risk_present,
    unemployment_active,
    house_severely_damaged,
    house_collapsed,
    care_level_severe,
    risk_present
        or unemployment_active
        or has_valid_certificate
        or is_seriously_ill
        or oop_12m >= $hardship_oop_12m::decimal(18, 2)
        or house_severely_damaged
        as has_hardship_signal,
    risk_present or is_seriously_ill or house_collapsed as has_severe_hardship_signal
from signals
