"""The factory's fixed vocabulary: station groups, work centers, specs, products, reasons,
materials. Names follow the shapes in ``shared/schema/sample_rows.json``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Group:
    name: str
    short: str
    workcenters: list[str]
    route_specs: list[str]  # a product's route runs one of these at this group
    extra_specs: list[str]  # inspection specs: in the spec table, rarely run
    end_spec: str  # checkpoint (no equipment)
    prefixes: list[str]  # machine name prefixes


GROUPS = [
    Group("切割", "DS", ["切割", "晶圓切割"], ["Wafer Saw", "Laser Saw"], ["晶圓貼片", "UV照射", "晶圓清洗"],
          "切割-END", ["GDSA", "GDSL"]),
    Group("焊接_DB", "DB", ["焊接_DB", "焊_DB_料"], ["Solder Paste D/B", "Eutectic D/B", "Epoxy D/B"],
          ["X-Ray_DB", "Die Shear"], "DB-END", ["GDBA", "GDBS"]),
    Group("焊接_WB", "WB", ["焊接_WB", "焊_WB_料"], ["銅線製程", "金線製程", "鋁線製程"],
          ["X-Ray_WB_7", "X-Ray_WB_20", "X-Ray_WB_30"], "WB-END", ["GWBA", "GWBC"]),
    Group("焊接_DW", "DW", ["焊接_DW", "焊_DW_料"], ["Clip Bond", "Dual Wire"], ["Reflow"], "DW-END",
          ["GDWA"]),
    Group("成型", "MD", ["成型", "成型_料"], ["M.G.P Mold", "Auto Mold"], ["Post Mold Cure", "Mold X-Ray"],
          "成型-END", ["GPRK", "GMDA"]),
    Group("去膠", "DF", ["去膠"], ["Deflash", "化學去膠"], ["去膠檢驗"], "去膠-END", ["GDFL"]),
    Group("水吹砂", "WS", ["水吹砂"], ["水吹砂", "噴砂"], [], "吹砂-END", ["GWSB"]),
    Group("電鍍", "PL", ["電鍍", "電鍍_料"], ["Matte Tin Plating"], ["Plating Bake", "鍍層量測"],
          "電鍍-END", ["GPLT"]),
    Group("移印", "MK", ["移印", "雷射印字"], ["Laser Mark", "Ink Mark"], ["印字檢驗"], "移印-END",
          ["GMRK", "GLMK"]),
    Group("切彎腳", "TF", ["切彎腳"], ["Trim/Form", "Trim/Form-2"], ["外觀檢驗"], "切彎腳-END", ["GTFA"]),
    Group("元件切割", "SG", ["元件切割", "PKG_SAW"], ["PKG_SAW", "Singulation"], [], "元件切割-END",
          ["GPKS"]),
    Group("測試", "TT", ["TMTT", "測試", "測試_料"], ["LT", "3M", "Final Test"], ["TMTT-QA", "重測"],
          "測試-END", ["GTMT", "GTMU", "GTMA"]),
]
GROUP_NAMES = [g.name for g in GROUPS]
N_GROUPS = len(GROUPS)
TEST = N_GROUPS - 1  # final test, where defects are detected
WB = 2
DB = 1
GROUP_SEQ = ["010", "070", "090", "100", "110", "120", "130", "140", "150", "160", "170", "180"]

# Mean queue and processing hours per group (back-end cycle of roughly a week).
QUEUE_HOURS = np.array([6, 8, 8, 6, 8, 4, 4, 8, 5, 5, 6, 10], dtype=np.float64)
PROC_HOURS = np.array([2.0, 2.5, 3.0, 1.5, 2.0, 0.8, 0.7, 2.5, 1.0, 1.2, 1.5, 3.0])
# Reject event probability and mean charged-off fraction per group.
REJECT_P = np.array([0.10, 0.12, 0.15, 0.08, 0.10, 0.05, 0.04, 0.08, 0.05, 0.10, 0.08, 0.40])
REJECT_FRAC = np.array([0.002, 0.0015, 0.002, 0.001, 0.0015, 0.0005, 0.0005, 0.001, 0.0005,
                        0.001, 0.001, 0.003])
DEFECT_P = np.array([0.02] * (N_GROUPS - 1) + [0.10])
HOLD_P = np.array([0.015] * (N_GROUPS - 1) + [0.03])

UNKNOWN_SPECS = ["入庫", "A線邊倉"]  # specs the spec table does not know (order 999)
STORE_WORKCENTER = "倉庫"

PACKAGES = ["SOT-23", "SOD-323", "SOD-123FL", "SMAF", "SOT-323", "SMA", "SMB", "SOD-523",
            "DFN1006-2", "TO-252"]
PACKAGE_WEIGHTS = np.array([25, 15, 15, 10, 8, 7, 5, 5, 5, 5], dtype=np.float64)
FUNCTIONS = {
    "SWITCHING": ["BAV199-AU", "BAS16", "1N4148W", "BAW56", "BAV99"],
    "SKY": ["RB551V-30-AU", "BAT54A", "SS14", "SK34", "PE-BAT54AW-L"],
    "FAST": ["RF081MP2STR", "ES1J", "US1M", "ES1002FL"],
    "ZENER": ["BZX84C5V1", "MMSZ5231B", "BZT52C12"],
    "TVS": ["SMAJ15A", "SMBJ24CA", "SXM54ALF"],
    "GPP": ["M7", "S1M", "GS1M"],
    "ESD": ["ESD5Z5V0", "ESD9B5V"],
}
BOPS = ["UCC10-DW", "UAC10", "PCUAB", "PCH10", "UAC20"]
FLOWS = ["PCH", "UAC", "PCU(片狀Reflow)", "UCC"]

WAFER_VENDORS = ["TXS", "GMSN", "RO", "WXC", "HJW", "SMC", "CRM", "YJX"]

# Reject reasons: (name, kind) with kind valid | excluded | disabled | invalid.
GROUP_REASONS: list[list[str]] = [
    ["290_切割崩角", "291_晶片破裂", "292_切割偏移"],
    ["210_晶片偏移", "211_銲料不足", "212_空洞", "213_晶片破裂"],
    ["220_斷線", "221_球形不良", "222_拉力不足", "223_線弧不良"],
    ["225_Clip偏移", "226_錫橋"],
    ["230_溢膠", "231_氣孔", "232_缺膠"],
    ["235_殘膠"],
    ["236_吹砂不良"],
    ["240_鍍層不良", "241_鍍層厚度異常"],
    ["245_印字不良", "246_印字偏移"],
    ["255_腳彎", "256_毛邊"],
    ["260_切割不良", "261_崩角"],
    ["250_VF", "251_IR", "252_VZ", "253_VBR", "254_OS", "257_TRR", "258_外觀不良"],
]
EXCLUDED_REASONS = ["151_首批抽測", "160_尾數未滿條空晶", "358_Bonus帳面錯誤調整", "310_工程樣品"]
DISABLED_REASONS = ["175_客退重測"]  # listed in the exclusion table with ENABLE_FLAG N
INVALID_REASONS = ["XXX_測試用", "ZZZ_帳務調整", "CONT", "IR PAT", "外觀"]
REASON_KIND_P = np.array([0.85, 0.07, 0.02, 0.06])  # valid, excluded, disabled, invalid
REASON_COMMENTS = ["", "", "", "工程確認", "依MRB判定報廢", "抽檢異常", "客戶要求"]

# Buckets: REJECTQTY STANDBYQTY QTYTOPROCESS INPROCESSQTY PROCESSEDQTY (charged off)
BUCKETS = ["REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY"]
BUCKET_P_ASSEMBLY = np.array([0.80, 0.05, 0.05, 0.05, 0.05])
BUCKET_P_TEST = np.array([0.15, 0.03, 0.03, 0.04, 0.75])

# ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE: 39 codes; the last nine are disabled.
EXCLUDE_CODES = [
    ("151", "首批抽測-久存晶片抽測"), ("152", "首批抽測-新品"), ("153", "可靠度抽測"),
    ("155", "客戶樣品"), ("156", "工程分析"), ("158", "QA抽樣"), ("160", "尾數未滿條空晶"),
    ("161", "尾數報廢"), ("163", "換線試產"), ("165", "設備驗證"), ("170", "盤點差異"),
    ("171", "帳面調整"), ("172", "系統轉換"), ("180", "研發領用"), ("181", "實驗批"),
    ("185", "外包加工差異"), ("190", "展示樣品"), ("191", "贈品"), ("195", "其他非生產"),
    ("310", "工程樣品"), ("311", "新品試作"), ("312", "製程變更驗證"), ("315", "治具驗證"),
    ("320", "料號轉換"), ("321", "版本轉換"), ("330", "客退分析"), ("335", "品保留樣"),
    ("340", "可靠度留樣"), ("345", "認證樣品"), ("350", "帳務沖銷"), ("355", "BOM調整"),
    ("358", "Bonus帳面錯誤調整"), ("360", "晶片借出"), ("365", "晶片歸還"),
    ("370", "跨廠調撥"), ("175", "客退重測"), ("380", "重工回收"), ("390", "報廢重申請"),
    ("399", "其他"),
]
EXCLUDE_DISABLED = {"175", "380", "390", "399", "365", "370", "191", "190", "153"}

# Holds: (reason, quality?)
HOLD_REASONS = [
    ("品質異常", True), ("外觀異常", True), ("X-Ray異常", True), ("良率偏低", True),
    ("MRB判定", True), ("SPC異常", True), ("客訴追蹤", True),
    ("Q-Time Fail", False), ("工程實驗", False), ("設備異常", False), ("待料", False),
    ("生管指示", False), ("客戶指示", False), ("帳料異常", False),
]
HOLD_DEPTS = ["品保部", "製造一部", "製造二部", "工程部", "生管課", "設備課"]
HOLD_COMMENTS = ["待工程確認", "拉力值偏低, 待確認", "外觀抽檢異常", "Q-Time超時", "依客戶要求暫停",
                 "待MRB會議", "設備異常待查", "料號待確認"]
RELEASE_COMMENTS = ["確認OK, 放行", "工程確認可放行", "MRB判定允收", "重工後放行", "客戶同意放行"]
FUTURE_COMMENTS = ["Future Hold: 測試前確認外觀", "Future Hold: 電鍍後抽測",
                   "Future Hold: 客戶要求出貨前確認",
                   "Future Hold: 工程實驗批追蹤"]

SURNAMES = list("陳林黃張李王吳劉蔡楊許鄭謝郭洪邱曾廖賴徐")
GIVEN = ["志明", "淑芬", "俊傑", "怡君", "家豪", "雅婷", "冠宇", "佩珊", "建宏", "美玲", "宗翰", "欣怡"]


@dataclass(frozen=True)
class MaterialPart:
    part: str
    description: str
    group: int
    per_unit: float  # quantity consumed per unit in the load
    lot_hours: float  # hours one material lot lasts on a machine
    vendor_lot: bool  # whether VENDORLOTNUMBER is filled
    base: int  # numeric stem of its lot names


MATERIALS = [
    MaterialPart("LEF000016", "腳架/SOD-323/OPTION 1/REEL/A42", DB, 0.0257, 96, True, 207010),
    MaterialPart("SLD000031", "銲錫膏/SAC305/500g", DB, 0.00004, 72, True, 318220),
    MaterialPart("WIR000052", "銅線/0.8mil/500M", WB, 0.0009, 120, True, 412090),
    MaterialPart("CLP000008", "Clip/SMAF/Cu/REEL", 3, 0.0101, 96, True, 515300),
    MaterialPart("COM000182", "成型膠/ELER-8-130PJ9/φ13/4.5g/", 4, 0.0076, 48, True, 600803),
    MaterialPart("CHM000021", "錫球/Matte Tin Anode", 7, 0.0011, 168, False, 710115),
    MaterialPart("INK000004", "印字油墨/白色", 8, 0.00002, 240, False, 801144),
    MaterialPart("PAC000056", "CARRIER TAPE/SOD-123/#3000/985M/8/*4mm/", TEST, 0.0610, 72,
                 False, 906536),
    MaterialPart("PAC000061", "COVER TAPE/5.4mm/500M", TEST, 0.0610, 96, False, 906811),
]
EXCURSION_MATERIAL = 0  # the lead frame part carries the planted material excursion
# The planted forward (containment) case: lots molded on one machine inside a window lose
# units to voids at molding and, worse, to plating defects downstream.
FORWARD_GROUP = 4  # 成型
FORWARD_DOWN_GROUP = 7  # 電鍍
FORWARD_FRONT_REASON = "231_氣孔"
FORWARD_DOWN_REASON = "240_鍍層不良"

JOB_CAUSES = ["EAP", "機構", "電控", "真空", "治具", "人為"]
JOB_REPAIRS = ["EAP-CHECK", "更換零件", "調整參數", "清潔保養", "重新校正"]
JOB_SYMPTOMS = ["EAP", "卡料", "異音", "參數飄移", "良率異常", "警報停機"]
JOB_COMMENTS = ["", "", "更換吸嘴", "調整溫度", "清潔軌道", "PM完成", "待料件"]

E10_STATES = ["PRD", "SBY", "UDT", "SDT", "EGT", "NST"]
E10_REASONS = ["PRD_NULL", "SBY_待料", "UDT_設備故障", "SDT_PM保養", "EGT_工程驗證", "NST_未排班"]
CARRIER_STATES = ["載具-IDLE", "載具-使用中"]


def group_specs(group: Group) -> list[str]:
    return [*group.route_specs, *group.extra_specs, group.end_spec]


def all_specs() -> list[str]:
    """Every spec name: the spec table's (by group) then the unknown ones."""
    return [s for g in GROUPS for s in group_specs(g)] + UNKNOWN_SPECS


def all_workcenters() -> list[str]:
    return [wc for g in GROUPS for wc in g.workcenters] + [STORE_WORKCENTER]
