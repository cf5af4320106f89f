"""The analyst warehouse `<out>/warehouse.duckdb` (outputs.md §2): every quarter's tables in one
DuckDB database, a Chinese and English COMMENT on every table and column, and views for the
common questions. No table holds a full identity number or a name: warnings carry `person_key`
(keyed HMAC) and `id_masked`, evidence masked numbers, and the feedback's free-text note is left
out (a department may write a name in it).

A quarter is loaded into a copy of the database — its rows deleted, then inserted from the
quarter's Parquet tables — and the copy then replaces the database in one rename. So re-running a
quarter gives the same rows, a run killed midway leaves the warehouse as it was, and analysts who
hold the database open read-only (DuckDB lets no process write a file another has open) keep
reading the version they opened while the job publishes the next; a new connection sees the new
one. One writer at a time: the Dagster instance runs one run at a time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from pipelines.core.faults import crash_point
from pipelines.core.layout import Outputs, QuarterOutputs

# table -> (comment, its Parquet file of a quarter, {column: comment})
TABLES: dict[str, tuple[str, Callable[[QuarterOutputs], Path], dict[str, str]]] = {
    "warnings": (
        "预警（每季度每条预警一行，不含身份证号和姓名） / Warnings: one row per warning per "
        "quarter, without identity numbers or names",
        lambda q: q.table("warnings"),
        {
            "warning_key": "预警编号，同一规则同一对象各季度不变 / Stable id of (rule, subject)",
            "quarter": "季度 / Quarter, e.g. 2026Q3",
            "status": "状态：NEW 新增、RECURRING 持续、ESCALATED 升级 / Lifecycle status",
            "quarters_open": "连续预警季度数（含本季度） / Consecutive quarters raised, this one "
            "included",
            "rule_id": "规则编号 / Rule id (policy.md §2)",
            "rule_name_zh": "规则名称 / Rule name in Chinese",
            "category": "预警类别 / Category: POLICY_NOT_IMPLEMENTED, NEWLY_ELIGIBLE, "
            "NO_LONGER_ELIGIBLE, HARDSHIP_WITHOUT_POLICY",
            "subject_type": "预警对象类型：个人或家庭 / Subject: PERSON or HOUSEHOLD",
            "household_id": "家庭编号：救助家庭编号或户号 / Household id: case_id or hukou_no",
            "household_source": "家庭来源：ROSTER 救助名册、REGISTRY 户籍 / Household kind",
            "county_code": "分送县（区）代码 / Routing county (6-digit code)",
            "reason_zh": "预警理由（含关键数字） / Reason in one Chinese sentence with the figures",
            "evidence": "依据（JSON：事实与参数，身份证号已脱敏） / Evidence JSON: facts and "
            "parameter values used, identity numbers masked",
            "policy_clause": "政策依据条款 / Clause of the policy text",
            "routed_to": "责任部门 / Receiving department",
            "person_key": "个人假名键（身份证号的密钥 HMAC） / Pseudonymous person key (keyed "
            "HMAC of the identity number)",
            "id_masked": "脱敏身份证号 / Masked identity number 350102********1234",
        },
    ),
    "warning_lifecycle": (
        "预警生命周期（每季度每个预警编号一行） / Warning lifecycle: one row per warning_key per "
        "quarter",
        lambda q: q.table("warning_lifecycle"),
        {
            "quarter": "季度 / Quarter",
            "warning_key": "预警编号 / Warning key",
            "rule_id": "规则编号 / Rule id",
            "status": "状态：NEW、RECURRING、ESCALATED、RESOLVED、SUPPRESSED、CARRIED_OVER / "
            "Lifecycle status",
            "quarters_open": "连续预警季度数 / Consecutive evaluated quarters raised (for "
            "RESOLVED: the streak that ended)",
            "feedback_action": "本季度采纳的部门反馈 / Feedback action applied this quarter",
            "routed_to": "责任部门 / Receiving department",
            "county_code": "分送县（区）代码 / Routing county",
            "in_progress_seen": "本轮是否收到“办理中”反馈（收到则不升级） / IN_PROGRESS "
            "feedback arrived during the streak (no escalation)",
            "suppressed_until": "核实不符后暂停预警至该季度 / Suppressed through this quarter "
            "after NOT_ELIGIBLE feedback",
        },
    ),
    "rule_runs": (
        "规则运行情况（每季度每条规则一行） / Rule runs: one row per rule per quarter",
        lambda q: q.table("rule_runs"),
        {
            "quarter": "季度 / Quarter",
            "rule_id": "规则编号 / Rule id",
            "status": "EVALUATED 已评估 / NOT_EVALUATED 未评估（数据或参数缺失） / Status",
            "reason": "未评估原因 / Why the rule was not evaluated",
            "warnings_raised": "产生预警数 / Warnings raised",
            "parameters": "使用的参数值（JSON） / Parameter values used (JSON)",
            "rule_version": "规则版本（版本号+文件摘要） / Rule version: version + file digest",
            "window_quarters": "十二个月窗口内可用季度数 / Quarters of the window W with the "
            "rule's event extracts accepted",
        },
    ),
    "extract_quality": (
        "部门数据质量（每季度每个数据项一行） / Extract quality: one row per extract per quarter",
        lambda q: q.table("extract_quality"),
        {
            "quarter": "季度 / Quarter",
            "department": "报送部门 / Sending department",
            "extract": "数据项 / Extract",
            "file_name": "文件名 / File name",
            "file_format": "文件格式 / File format",
            "encoding": "字符编码 / Encoding",
            "sha256": "文件 SHA-256 / File hash",
            "rows_received": "接收行数 / Rows received",
            "rows_accepted": "通过行数 / Rows accepted",
            "rows_quarantined": "隔离行数 / Rows quarantined",
            "status": "PASSED 通过 / FAILED 失败 / MISSING 未报送 / Status",
            "failure_reasons": "文件级失败原因 / File-level failure reasons",
            "contract_version": "数据契约版本 / Data contract version",
            "extra_columns": "多余列 / Extra columns received and ignored",
        },
    ),
    "quarantine_reasons": (
        "隔离原因（每季度每个数据项每种原因一行） / Quarantine reasons: one row per extract per "
        "quarter per reason",
        lambda q: q.table("quarantine_reasons"),
        {
            "quarter": "季度 / Quarter",
            "department": "报送部门 / Sending department",
            "extract": "数据项 / Extract",
            "reason": "原因 / Reason id",
            "rows": "行数 / Rows",
            "examples": "示例（已脱敏） / Masked examples",
        },
    ),
    "data_findings": (
        "数据质量发现（每季度每县每类一行） / Data findings: one row per finding per county per "
        "quarter",
        lambda q: q.table("data_findings"),
        {
            "quarter": "季度 / Quarter",
            "county_code": "县（区）代码 / County",
            "finding": "发现类型 / Finding",
            "count": "数量 / Count",
        },
    ),
    "feedback": (
        "部门处置反馈（已通过契约校验，不含备注） / Departments' feedback accepted by the "
        "contract gate, without the free-text note",
        lambda q: q.table("feedback"),
        {
            "quarter": "反馈到达季度 / Quarter the feedback arrived",
            "department": "反馈部门 / Department answering",
            "warning_key": "预警编号 / Warning key",
            "action": "处置结果 / Action",
            "action_date": "处置日期 / Action date",
        },
    ),
    "routed_warnings": (
        "预警分送记录（每季度每个分送文件中的每条预警一行） / Routing: one row per warning per "
        "receiving file per quarter",
        lambda q: q.routing,
        {
            "quarter": "季度 / Quarter",
            "warning_key": "预警编号 / Warning key",
            "routed_to": "接收部门（升级抄送为 county_coordination） / Department whose file "
            "holds it (county_coordination for an escalation copy)",
            "county_code": "县（区）代码 / County",
            "escalation_copy": "是否升级抄送 / An escalation copy to the county coordination",
        },
    ),
}

VIEWS: dict[str, tuple[str, str]] = {
    "v_warnings_by_county_category_quarter": (
        "按县、类别、季度统计预警 / Warnings by county × category × quarter",
        """select quarter, county_code, category, count(*) as warnings,
            count(*) filter (where status = 'NEW') as new,
            count(*) filter (where status = 'ESCALATED') as escalated
        from warnings group by all order by quarter, county_code, category""",
    ),
    "v_open_cases_by_age": (
        "按持续季度数统计未结预警 / Open cases by age (quarters open)",
        """select quarter, rule_id, routed_to, quarters_open, count(*) as cases
        from warning_lifecycle
        where status in ('NEW', 'RECURRING', 'ESCALATED', 'CARRIED_OVER')
        group by all order by quarter, rule_id, routed_to, quarters_open""",
    ),
    "v_department_response_rates": (
        "部门反馈率：分送的预警中此后收到该部门反馈的比例 / Departments' response rates: share "
        "of routed warnings the department later answered",
        """select r.quarter, r.routed_to,
            count(distinct r.warning_key) as routed,
            count(distinct f.warning_key) as answered,
            round(count(distinct f.warning_key) / count(distinct r.warning_key), 4)
                as response_rate
        from routed_warnings r
        left join feedback f
            on f.warning_key = r.warning_key and f.department = r.routed_to
            and f.quarter > r.quarter
        group by all order by r.quarter, r.routed_to""",
    ),
}


def _sql_text(s: str) -> str:
    """A comment as an SQL string literal (comments are our own constants, not data)."""
    return "'" + s.replace("'", "''") + "'"


def load_quarter(out: Path, quarter: str) -> dict[str, int]:
    """Replace one quarter's rows in every table; returns rows per table."""
    return _swap_in(out, lambda work: _load(work, Path(out), quarter))


def _swap_in(out: Path, load: Callable[[Path], dict[str, int]]) -> dict[str, int]:
    """`load` into a copy of the warehouse, then the copy in place of it in one rename."""
    path = Outputs(out).warehouse
    work = Outputs(out).warehouse_copy()
    for left in [work, *Outputs(out).warehouse_copies_of_the_dead()]:
        left.unlink(missing_ok=True)
    if path.is_file():
        shutil.copyfile(path, work)
    try:
        loaded = load(work)
        crash_point("warehouse_swap")
        os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)
    return loaded


# what-if comparisons (`policy/whatif.py`): table -> (comment, its Parquet file, {column: comment})
WHATIF_TABLES: dict[str, tuple[str, Callable[[Outputs, str], Path], dict[str, str]]] = {
    "whatif_runs": (
        "政策模拟（每次模拟一行） / What-if runs: one row per comparison of a reform with a "
        "published quarter",
        lambda o, name: o.whatif_runs_table(name),
        {
            "whatif": "模拟名称 / Name of the comparison",
            "quarter": "所用季度 / The published quarter it was evaluated on",
            "as_of": "改革参数取值日期 / The date the reform's values are taken as in effect",
            "reform_file": "改革参数文件 / The reform's parameter file",
            "reform_sha256": "改革参数文件的 SHA-256 / SHA-256 of the reform file",
            "reform_description": "改革说明 / The reform's description",
            "changed": "改革的参数（JSON：参数、生效日期、取值） / Parameters changed (JSON)",
            "baseline_warnings": "现行参数下的预警数 / Warnings under the baseline",
            "reform_warnings": "改革参数下的预警数 / Warnings under the reform",
            "newly_flagged": "仅改革下出现的预警数 / Warnings only the reform raises",
            "no_longer_flagged": "改革下不再出现的预警数 / Warnings only the baseline raises",
            "monthly_cost_change_yuan": "估计每月费用变化（元） / Estimated monthly cost change, "
            "yuan",
            "cost_computed_as": "费用估算方法 / How the cost was estimated",
        },
    ),
    "whatif_changes": (
        "政策模拟结果（每次模拟每条规则每县每类别一行） / What-if changes: one row per "
        "comparison, rule, county and category",
        lambda o, name: o.whatif_changes(name),
        {
            "whatif": "模拟名称 / Name of the comparison",
            "quarter": "所用季度 / The published quarter",
            "rule_id": "规则编号 / Rule id",
            "county_code": "县（区）代码 / County",
            "category": "预警类别 / Category",
            "baseline_warnings": "现行参数下的预警数 / Warnings under the baseline",
            "reform_warnings": "改革参数下的预警数 / Warnings under the reform",
            "newly_flagged": "新增预警数 / Newly flagged",
            "no_longer_flagged": "不再预警数 / No longer flagged",
            "monthly_cost_change_yuan": "估计每月费用变化（元，NE_DIBAO 与 NE_TEKUN） / "
            "Estimated monthly cost change, yuan (NE_DIBAO and NE_TEKUN)",
        },
    ),
}


def load_whatif(out: Path, name: str) -> dict[str, int]:
    """Replace one comparison's rows in `whatif_runs` and `whatif_changes` (counts only: no
    person, no key); returns rows per table."""

    def load(work: Path) -> dict[str, int]:
        with _transaction(work) as con:
            return {
                table: _replace_rows(
                    con, table, comment, columns, source(Outputs(out), name), "whatif", name
                )
                for table, (comment, source, columns) in WHATIF_TABLES.items()
            }

    return _swap_in(out, load)


@contextlib.contextmanager
def _transaction(work: Path):
    """A connection to the warehouse's copy, in one transaction: committed, or rolled back."""
    con = duckdb.connect(str(work))
    try:
        con.execute("begin transaction")
        yield con
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.close()


def _replace_rows(
    con, table: str, comment: str, columns: dict[str, str], parquet: Path, by: str, value: str
) -> int:
    """The table's rows with `by` = `value` replaced by the Parquet file's (the table made from
    it if new), its comments set; returns the rows it now holds for `value`."""
    cols = ", ".join(columns)
    con.execute(
        f"create table if not exists {table} as select {cols} from read_parquet($p) limit 0",
        {"p": str(parquet)},
    )
    con.execute(f"delete from {table} where {by} = $v", {"v": value})
    con.execute(f"insert into {table} select {cols} from read_parquet($p)", {"p": str(parquet)})
    con.execute(f"comment on table {table} is {_sql_text(comment)}")
    for column, text in columns.items():
        con.execute(f"comment on column {table}.{column} is {_sql_text(text)}")
    return con.execute(f"select count(*) from {table} where {by} = $v", {"v": value}).fetchall()[0][
        0
    ]


def _load(work: Path, out: Path, quarter: str) -> dict[str, int]:
    loaded = {}
    with _transaction(work) as con:
        for table, (comment, source, columns) in TABLES.items():
            parquet = source(Outputs(out).quarter(quarter))
            if not parquet.is_file():
                continue
            loaded[table] = _replace_rows(con, table, comment, columns, parquet, "quarter", quarter)
        present = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        for view, (comment, sql) in VIEWS.items():
            needs = {"warnings", "warning_lifecycle", "routed_warnings", "feedback"}
            if needs <= present:
                con.execute(f"create or replace view {view} as {sql}")
                con.execute(f"comment on view {view} is {_sql_text(comment)}")
    return loaded
