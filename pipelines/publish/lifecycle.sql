-- The quarter's warning_lifecycle rows, one per key (domain.md, "dynamic monitoring"; the
-- decision in order is written out in lifecycle.py, beside this file, which runs it). Reads the tables the
-- publishing step puts in the engine: `raised` (the quarter's warnings), `evaluated_rules`,
-- `feedback` (the answers the gate accepted) and `previous` (the previous processed quarter's
-- lifecycle rows). $quarter, $escalate_after, $last_suppressed (the last quarter a dismissal
-- made now suppresses). The rows come back unordered; the caller sorts them.
with

alive as (
    select
        warning_key,
        rule_id as p_rule,
        routed_to as p_routed_to,
        county_code as p_county,
        status in ('NEW', 'RECURRING', 'ESCALATED', 'CARRIED_OVER') as p_open,
        quarters_open as p_quarters_open,
        coalesce(in_progress_seen, false) as p_in_progress,
        case when status = 'SUPPRESSED' then suppressed_until end as p_suppressed_until
    from previous
    where status in ('NEW', 'RECURRING', 'ESCALATED', 'CARRIED_OVER')
        or (status = 'SUPPRESSED' and suppressed_until >= $quarter)
),

now as (
    select
        warning_key,
        min(rule_id) as r_rule,
        min(routed_to) as r_routed_to,
        min(county_code) as r_county
    from raised
    group by warning_key
),

-- one answer per key: the latest action_date, ties in the order of precedence
ranked_answers as (
    select
        warning_key,
        action,
        row_number() over (
            partition by warning_key
            order by
                action_date desc nulls first,
                case action
                    when 'ASSISTED' then 0
                    when 'TERMINATED' then 1
                    when 'NOT_ELIGIBLE' then 2
                    when 'IN_PROGRESS' then 3
                    when 'UNREACHABLE' then 4
                    else 5
                end
        ) as answer_rank
    from feedback
),

answers as (select warning_key, action from ranked_answers where answer_rank = 1),

keys as (
    select warning_key from alive
    union
    select warning_key from now
    union
    select warning_key from answers
),

joined as (
    select
        keys.warning_key,
        coalesce(now.r_rule, alive.p_rule, regexp_replace(keys.warning_key, '-[0-9a-f]+$', ''))
            as rule_id,
        coalesce(now.r_routed_to, alive.p_routed_to) as routed_to,
        coalesce(now.r_county, alive.p_county) as county_code,
        now.warning_key is not null as is_raised,
        coalesce(alive.p_open, false) as p_open,
        alive.p_quarters_open,
        coalesce(alive.p_in_progress, false) as p_in_progress,
        alive.p_suppressed_until,
        answers.action
    from keys
    left join alive on alive.warning_key = keys.warning_key
    left join now on now.warning_key = keys.warning_key
    left join answers on answers.warning_key = keys.warning_key
),

judged as (
    select
        *,
        rule_id in (select rule_id from evaluated_rules) as evaluated,
        (p_open and p_in_progress) or coalesce(action = 'IN_PROGRESS', false) as in_progress,
        case when p_open then p_quarters_open + 1 else 1 end as streak
    from joined
),

decided as (
    select
        *,
        case
            when action in ('ASSISTED', 'TERMINATED') then 'RESOLVED'
            when action = 'NOT_ELIGIBLE' or p_suppressed_until is not null then 'SUPPRESSED'
            when not evaluated then case when p_open then 'CARRIED_OVER' end
            when is_raised then
                case
                    when not p_open then 'NEW'
                    when streak >= $escalate_after and not in_progress then 'ESCALATED'
                    else 'RECURRING'
                end
            when p_open then 'RESOLVED'
        end as status
    from judged
)

select
    $quarter as quarter,
    warning_key,
    rule_id,
    status,
    case
        when status in ('NEW', 'RECURRING', 'ESCALATED') then streak
        when status in ('CARRIED_OVER', 'RESOLVED') then p_quarters_open
    end as quarters_open,
    action as feedback_action,
    routed_to,
    county_code,
    case
        when status in ('NEW', 'RECURRING', 'ESCALATED', 'CARRIED_OVER') then in_progress
        else false
    end as in_progress_seen,
    case
        when action = 'NOT_ELIGIBLE' then $last_suppressed
        when status = 'SUPPRESSED' then p_suppressed_until
    end as suppressed_until
from decided
where status is not null
