-- One row per ACTIVE RESIDENTIAL property per owner (policy.md §1 asset failures): what the
-- household models count, distinct across members, so a flat owned by two members counts once.
with

properties as (select * from mnr_properties)

select distinct id_number, property_id
from properties
where status = 'ACTIVE' and usage = 'RESIDENTIAL'
