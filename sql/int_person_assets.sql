-- One row per person with an asset that the asset test of policy.md §1 looks at. Residential
-- properties are counted per household from mnr_properties itself (a flat owned by two members
-- is one property); here they are counted for the person alone (NE_TEKUN).
with

vehicles as (select * from mps_vehicles),
business_registrations as (select * from samr_business_registrations),
properties as (select * from mnr_properties),

cars as (
    -- motorcycles, low-speed and mobility vehicles never fail the test
    select id_number, max(assessed_value) as max_vehicle_value
    from vehicles
    where status = 'ACTIVE' and vehicle_class in ('CAR', 'TRUCK')
    group by id_number
),

businesses as (
    -- a FARMER_COOP never fails the test
    select
        id_number,
        bool_or(
            entity_type = 'ENTERPRISE'
            or (entity_type = 'INDIVIDUAL_BUSINESS'
                and registered_capital > $business_capital_limit::decimal(18, 2))
        ) as business_failure,
        max(registered_capital) filter (where entity_type <> 'FARMER_COOP') as max_business_capital
    from business_registrations
    where status = 'ACTIVE'
    group by id_number
),

owned as (
    select
        id_number,
        count(distinct property_id) filter (where usage = 'RESIDENTIAL') as residential_properties,
        bool_or(usage in ('COMMERCIAL', 'INDUSTRIAL')) as commercial_property
    from properties
    where status = 'ACTIVE'
    group by id_number
),

people as (
    select id_number from cars
    union select id_number from businesses
    union select id_number from owned
)

select
    people.id_number,
    cars.max_vehicle_value,
    coalesce(businesses.business_failure, false) as business_failure,
    businesses.max_business_capital,
    coalesce(owned.residential_properties, 0) as residential_properties,
    coalesce(owned.commercial_property, false) as commercial_property
from people
left join cars using (id_number)
left join businesses using (id_number)
left join owned using (id_number)
