-- Small helpers shared by the fact models and the rules (run first, once per connection).

-- 350102********1234: what analysts and evidence may show of an identity number
create or replace macro mask_id(id) as substr(id, 1, 6) || '********' || substr(id, 15, 4);

-- 2,850.00: money as officers read it in reason_zh
create or replace macro yuan(x) as (format('{:,.2f}', x::double));

-- completed years at day e (a birthday on e counts); calendar years, then one less before the
-- birthday (portable: never date_diff, whose units differ between engines)
create or replace macro completed_years(born, e) as
    year(e) - year(born)
    - case when strftime(e, '%m%d') < strftime(born, '%m%d') then 1 else 0 end;

-- the birth date inside a (normalised, 18-character) identity number
create or replace macro id_birth_date(id) as try_strptime(substr(id, 7, 8), '%Y%m%d')::date;

create or replace macro program_zh(p) as case p
    when 'DIBAO' then '低保'
    when 'TEKUN' then '特困'
    when 'DIBAO_EDGE' then '低保边缘'
    when 'RIGID_EXPENDITURE' then '支出型困难'
end;

-- policy.md §1 passes_assets(P), from a subject's asset summary and programme P's vehicle limit
create or replace macro passes_assets(
    max_vehicle_value, business_failure, residential_properties, commercial_property,
    vehicle_value_limit, residential_property_limit
) as not (
    coalesce(max_vehicle_value > vehicle_value_limit, false)
    or business_failure
    or residential_properties > residential_property_limit
    or commercial_property
);

-- the asset figures a rule used, for evidence
create or replace macro assets_json(
    max_vehicle_value, business_failure, residential_properties, commercial_property,
    vehicle_value_limit, business_capital_limit, residential_property_limit
) as json_object(
    'max_vehicle_value', max_vehicle_value,
    'vehicle_value_limit', vehicle_value_limit,
    'business_failure', business_failure,
    'business_capital_limit', business_capital_limit,
    'residential_properties', residential_properties,
    'residential_property_limit', residential_property_limit,
    'commercial_or_industrial_property', commercial_property
);

-- which asset test failed, in Chinese, for reason_zh
create or replace macro asset_failures_zh(
    max_vehicle_value, business_failure, residential_properties, commercial_property,
    vehicle_value_limit, residential_property_limit
) as concat_ws('；',
    case when max_vehicle_value > vehicle_value_limit
        then '车辆评估价值 ' || yuan(max_vehicle_value) || ' 元，超过限额 ' || yuan(vehicle_value_limit) || ' 元' end,
    case when business_failure then '有在营企业或注册资本超限的个体工商户' end,
    case when residential_properties > residential_property_limit
        then '住宅 ' || residential_properties || ' 套，超过 ' || residential_property_limit || ' 套' end,
    case when commercial_property then '有商业或工业用房' end
);
