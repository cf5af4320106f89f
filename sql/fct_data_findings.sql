-- One row per data-quality finding per county (policy.md §2, last paragraph; extracts.md §3):
-- a roster person missing from the registry, a roster case without exactly one HEAD, a
-- single-person case with more than one row. Findings are not warnings.
with

roster as (select * from mca_assistance_roster),
registry as (select * from mps_residents),
cases as (select * from int_roster_households),

findings as (
    select roster.county_code, 'ROSTER_PERSON_NOT_IN_REGISTRY' as finding
    from roster
    anti join registry using (id_number)
    union all
    select county_code, 'CASE_WITHOUT_ONE_HEAD' from cases where heads <> 1
    union all
    select county_code, 'SINGLE_PERSON_CASE_WITH_SEVERAL_ROWS'
    from cases
    where single_person and roster_rows > 1
)

select $quarter as quarter, county_code, finding, count(*) as count
from findings
group by county_code, finding
order by county_code, finding
