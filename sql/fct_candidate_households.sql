-- One row per candidate household of the NEWLY_ELIGIBLE rules (policy.md §2): roster cases with
-- members left, and non-covered registry households with at least one member who has a hardship
-- signal. Which programmes' cases are candidates is each rule's `programmes` (DIBAO_EDGE and
-- RIGID_EXPENDITURE in policy.md), which the rules reading this model bind and filter by.
with

roster_households as (select * from fct_roster_households),
registry_households as (select * from fct_registry_households),

candidates as (
    select
        household_id, household_source, program, county_code, display_id, size,
        household_income, household_oop_12m, standard, max_vehicle_value, business_failure,
        residential_properties, commercial_property, member_ids, members
    from roster_households
    where size > 0
    union all
    select
        household_id, household_source, null, county_code, display_id, size,
        household_income, household_oop_12m, standard, max_vehicle_value, business_failure,
        residential_properties, commercial_property, member_ids, members
    from registry_households
    where not is_covered and has_hardship_signal
)

select
    household_id,
    household_source,
    program,
    county_code,
    display_id,
    size,
    household_income,
    household_oop_12m,
    standard,
    (standard * size)::decimal(18, 2) as dibao_line,
    (
        $dibao_edge_multiplier::decimal(18, 4) * standard * size
    )::decimal(18, 2) as edge_line,
    -- exact decimal comparisons on household totals, never on rounded per-capita figures
    household_income < standard * size as below_dibao,
    household_income < $dibao_edge_multiplier::decimal(18, 4) * standard * size as below_edge,
    12 * household_income - household_oop_12m < 12 * standard * size as below_after_rigid,
    max_vehicle_value,
    business_failure,
    residential_properties,
    commercial_property,
    member_ids,
    members
from candidates
