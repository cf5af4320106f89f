"""The departments (domain.md), the routing codes warnings go to, and the two extracts every rule
reads.

A routing code is also the name of the folder a department's feedback arrives in (extracts.md §4):
`county_coordination`, the county's coordination mechanism, receives the HARDSHIP_WITHOUT_POLICY
warnings and a copy of every ESCALATED one, and answers like any department.
"""

from __future__ import annotations

DEPARTMENTS = {  # code -> name in Chinese (domain.md, Departments)
    "mca": "民政",
    "mps": "公安",
    "hrss": "人社",
    "nhsa": "医保",
    "moe": "教育",
    "mohurd": "住建",
    "mnr": "自然资源",
    "samr": "市场监管",
    "cdpf": "残联",
    "mara": "农业农村",
    "mem": "应急管理",
    "any": "各部门",  # the feedback contract, sent by every receiving department
}
COORDINATION = "county_coordination"
ROUTES = ("mca", "moe", "nhsa", "mohurd", "hrss", "cdpf", "mem", COORDINATION)
# the registry and the roster (policy.md §4): every rule reads them, so without them a quarter
# cannot be processed at all
REGISTRY = ("mps", "residents")
ROSTER = ("mca", "assistance_roster")
CORE_EXTRACTS = (REGISTRY, ROSTER)
