-- One row per registry household (int_registry_households, which says who its members are and
-- what they have), with the dibao standard of the household's county. Kept apart so that a
-- reform of the standard (policy/whatif.py) builds this thin layer again, not the members'
-- aggregation.
with

households as (select * from int_registry_households),
standards as (select * from county_standards)

select
    households.household_id,
    households.household_source,
    households.county_code,
    households.display_id,
    households.size,
    households.is_covered,
    households.has_hardship_signal,
    households.has_severe_hardship_signal,
    households.household_income,
    households.household_oop_12m,
    standards.dibao_standard as standard,
    households.max_vehicle_value,
    households.business_failure,
    households.residential_properties,
    households.commercial_property,
    households.member_ids,
    households.members
from households
left join standards on standards.county_code = households.county_code
