-- One row per person with income on record at E (policy.md §1 monthly_income, without the
-- roster's other_income_monthly, which fct_persons adds). Assistance benefits are not income.
with

employment as (select * from hrss_employment),
pensions as (select * from hrss_pensions),
unemployment_registrations as (select * from hrss_unemployment_registrations),

wages as (
    -- contributions running at E: started on or before E, not ended before E
    select id_number, sum(monthly_wage) as wage_income
    from employment
    where started_on <= $quarter_end::date
        and (ended_on is null or ended_on >= $quarter_end::date)
    group by id_number
),

pensioned as (
    select id_number, sum(monthly_amount) as pension_income
    from pensions
    group by id_number
),

benefits as (
    select id_number, benefit_monthly as unemployment_benefit
    from unemployment_registrations
    where status = 'ACTIVE'
),

people as (
    select id_number from wages
    union select id_number from pensioned
    union select id_number from benefits
)

select
    people.id_number,
    coalesce(wages.wage_income, 0)::decimal(18, 2) as wage_income,
    coalesce(pensioned.pension_income, 0)::decimal(18, 2) as pension_income,
    coalesce(benefits.unemployment_benefit, 0)::decimal(18, 2) as unemployment_benefit
from people
left join wages using (id_number)
left join pensioned using (id_number)
left join benefits using (id_number)
