-- One row per roster case (int_roster_households, which says who its members are and what they
-- have), with the dibao standard of the case's county. Kept apart so that a reform of the
-- standard (policy/whatif.py) builds this thin layer again, not the members' aggregation.
with

households as (select * from int_roster_households),
standards as (select * from county_standards)

select
    households.household_id,
    households.household_source,
    households.program,
    households.county_code,
    households.single_person,
    households.roster_rows,
    households.heads,
    households.head_id,
    households.display_id,
    households.size,
    households.household_income,
    households.household_oop_12m,
    standards.dibao_standard as standard,
    households.max_vehicle_value,
    households.business_failure,
    households.residential_properties,
    households.commercial_property,
    households.in_gradual_exit,
    households.member_ids,
    households.members
from households
left join standards on standards.county_code = households.county_code
