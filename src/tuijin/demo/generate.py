"""`tuijin demo`: generate a realistic, deterministic sales history into an empty database.

This is the demo bulk-load path. It works in two steps:

1. *Plan*: with one `random.Random(seed)` and dates anchored at the start of
   today (local time), decide every user, customer, contact, opportunity
   (with its stage path) and activity in memory. Nothing here reads the clock
   beyond today's date, so the same seed on the same day gives the same data
   (names, amounts, dates).
2. *Write*: create every record through the ordinary services (`user_create`,
   `customer_create`, `opportunity_create`, `opportunity_move_stage`,
   `activity_create`, `customer_member_set`, `customer_transfer`, ...), so
   validation, duplicate checks and the change trail behave exactly as in real
   use. Services stamp "now" on creation times; afterwards this module
   backdates the timestamp columns (customer/contact/opportunity/activity
   creation times, stage entry, last progress, close dates, expected close
   dates) with queryset `.update()` so the history spans `months` months.

Change-trail events are *not* backdated: they keep their real creation time
(the moment `tuijin demo` ran), because the trail is a hash chain that must
verify and must never be rewritten — `tuijin audit verify` passes afterwards.

Everything runs in one transaction: a failure leaves the database empty, and
SQLite does not sync to disk for every record (the default size loads in a
few seconds).

Some reps are deliberately "quiet" (no opportunity progress for 7+ days) and
some single opportunities are stale, so goal-health lights have red to show.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import random
import time
import unicodedata
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from tuijin.customers.grading_services import grading_deferred
from tuijin.customers.models import Contact, Customer, CustomerMember, OwnerChange
from tuijin.customers.normalize import credit_code_check_char, normalize_name
from tuijin.customers.services import customer_create, customer_member_set, customer_update
from tuijin.followups.models import Activity
from tuijin.followups.services import activity_create
from tuijin.org.models import User
from tuijin.org.services import user_create
from tuijin.pipeline.models import Opportunity, Product, Stage
from tuijin.pipeline.services import (
    customer_transfer,
    industry_template_apply,
    industry_templates,
    opportunity_create,
    opportunity_move_stage,
)

from .org import LOGINS, build_org


class DemoError(Exception):
    """The demo cannot be loaded (database not empty, bad arguments)."""


# --------------------------------------------------------------------------- word lists

SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
    ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("潘", "pan"),
    ("袁", "yuan"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"), ("叶", "ye"),
    ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("沈", "shen"),
    ("姚", "yao"), ("卢", "lu"), ("钟", "zhong"), ("陆", "lu"), ("汪", "wang"), ("范", "fan"),
]
GIVEN = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("超", "chao"), ("霞", "xia"), ("平", "ping"),
    ("刚", "gang"), ("鹏", "peng"), ("斌", "bin"), ("慧", "hui"), ("宇", "yu"), ("浩", "hao"),
    ("凯", "kai"), ("晨", "chen"), ("秀英", "xiuying"), ("建华", "jianhua"), ("志强", "zhiqiang"),
    ("海燕", "haiyan"), ("晓东", "xiaodong"), ("文博", "wenbo"), ("雪梅", "xuemei"), ("思远", "siyuan"),
    ("佳琪", "jiaqi"), ("子涵", "zihan"), ("俊杰", "junjie"), ("婷婷", "tingting"), ("国庆", "guoqing"),
    ("红梅", "hongmei"), ("立新", "lixin"), ("春燕", "chunyan"), ("建国", "jianguo"), ("丽娟", "lijuan"),
    ("志明", "zhiming"), ("晓燕", "xiaoyan"), ("永刚", "yonggang"), ("嘉怡", "jiayi"), ("一鸣", "yiming"),
]
# Word stems for company names, with pinyin for e-mail domains.
STEMS = [
    ("瑞康", "ruikang"), ("仁和", "renhe"), ("华美", "huamei"), ("康泰", "kangtai"), ("博爱", "boai"),
    ("安泰", "antai"), ("益民", "yimin"), ("德仁", "deren"), ("永康", "yongkang"), ("同心", "tongxin"),
    ("恒康", "hengkang"), ("济民", "jimin"), ("爱康", "aikang"), ("天佑", "tianyou"), ("明德", "mingde"),
    ("嘉禾", "jiahe"), ("鼎盛", "dingsheng"), ("远航", "yuanhang"), ("华信", "huaxin"), ("中科", "zhongke"),
    ("新元", "xinyuan"), ("东方", "dongfang"), ("金桥", "jinqiao"), ("宏达", "hongda"), ("启明", "qiming"),
    ("光华", "guanghua"), ("诚信", "chengxin"), ("和美", "hemei"), ("汇通", "huitong"), ("聚贤", "juxian"),
    ("锦程", "jincheng"), ("海纳", "haina"), ("卓越", "zhuoyue"), ("安康", "ankang"), ("福瑞", "furui"),
    ("华康", "huakang"), ("惠民", "huimin"), ("百川", "baichuan"), ("精诚", "jingcheng"), ("协和", "xiehe"),
    ("瑞金", "ruijin"), ("同济", "tongji"), ("仁济", "renji"), ("新华", "xinhua"), ("华山", "huashan"),
    ("长庚", "changgeng"), ("致远", "zhiyuan"), ("恒信", "hengxin"), ("盛世", "shengshi"), ("天成", "tiancheng"),
    ("瑞丰", "ruifeng"), ("祥和", "xianghe"), ("立信", "lixin"), ("众诚", "zhongcheng"), ("博远", "boyuan"),
]
CN_NUMS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]
ROADS = ["人民路", "中山路", "解放路", "建设路", "延安路", "文化路", "学府路", "科技路", "长江路", "黄河路",
         "湖滨路", "新华路", "和平路", "东方路", "光明路", "滨江大道"]

# city: (pinyin, area code, administrative division codes, districts)
CITIES = {
    "上海": ("shanghai", "021", ["310101", "310104", "310105", "310106", "310110", "310112", "310115"],
             ["黄浦区", "徐汇区", "长宁区", "静安区", "浦东新区", "闵行区", "杨浦区"]),
    "苏州": ("suzhou", "0512", ["320505", "320506", "320508"], ["虎丘区", "吴中区", "姑苏区", "工业园区"]),
    "无锡": ("wuxi", "0510", ["320213", "320214"], ["梁溪区", "新吴区", "滨湖区"]),
    "杭州": ("hangzhou", "0571", ["330102", "330105", "330106", "330108", "330110"],
             ["上城区", "拱墅区", "西湖区", "滨江区", "余杭区"]),
    "宁波": ("ningbo", "0574", ["330203", "330212"], ["海曙区", "鄞州区", "江北区"]),
    "绍兴": ("shaoxing", "0575", ["330602", "330603"], ["越城区", "柯桥区"]),
    "广州": ("guangzhou", "020", ["440103", "440104", "440105", "440106", "440111"],
             ["荔湾区", "越秀区", "海珠区", "天河区", "白云区", "番禺区"]),
    "佛山": ("foshan", "0757", ["440604", "440606"], ["禅城区", "顺德区", "南海区"]),
    "深圳": ("shenzhen", "0755", ["440303", "440304", "440305", "440306"],
             ["罗湖区", "福田区", "南山区", "宝安区", "龙岗区"]),
    "东莞": ("dongguan", "0769", ["441900"], ["南城街道", "东城街道", "松山湖"]),
    "珠海": ("zhuhai", "0756", ["440402"], ["香洲区", "金湾区"]),
    "北京": ("beijing", "010", ["110101", "110102", "110105", "110106", "110108"],
             ["东城区", "西城区", "朝阳区", "丰台区", "海淀区"]),
    "天津": ("tianjin", "022", ["120101", "120103", "120104"], ["和平区", "河西区", "南开区"]),
    "石家庄": ("shijiazhuang", "0311", ["130102", "130104"], ["长安区", "桥西区", "裕华区"]),
}
# A team covers its home city and nearby ones (weights).
TEAM_CITIES = {
    "shanghai_team": [("上海", 6), ("苏州", 2), ("无锡", 1)],
    "hangzhou_team": [("杭州", 6), ("宁波", 2), ("绍兴", 1)],
    "guangzhou_team": [("广州", 6), ("佛山", 2)],
    "shenzhen_team": [("深圳", 6), ("东莞", 2), ("珠海", 1)],
    "beijing_team": [("北京", 6), ("天津", 2), ("石家庄", 1)],
}
TEAM_REGION = {
    "shanghai_team": ("east", "华东"), "hangzhou_team": ("east", "华东"),
    "guangzhou_team": ("south", "华南"), "shenzhen_team": ("south", "华南"),
    "beijing_team": ("north", "华北"),
}
REGION_TEAMS = {
    "east": ["shanghai_team", "hangzhou_team"],
    "south": ["guangzhou_team", "shenzhen_team"],
    "north": ["beijing_team"],
}
# Extra reps go to the team with the fewest reps; ties in this order.
TEAM_FILL_ORDER = ["shenzhen_team", "beijing_team", "shanghai_team", "hangzhou_team", "guangzhou_team"]

# Company-name patterns per industry code: {city} {stem} {num}.
NAME_PATTERNS = {
    "hospital_public": ["{city}{stem}医院", "{city}市第{num}人民医院", "{city}市{stem}中心医院",
                        "{city}{stem}医科大学附属医院", "{city}市{district}人民医院"],
    "hospital_private": ["{city}{stem}眼科医院", "{city}{stem}妇产医院", "{city}{stem}骨科医院",
                         "{city}{stem}口腔医院有限公司", "{city}{stem}康复医院"],
    "clinic": ["{city}{stem}健康体检中心", "{city}{stem}门诊部", "{city}{stem}口腔诊所", "{city}{stem}医疗美容诊所"],
    "distributor": ["{city}{stem}医疗器械有限公司", "{city}{stem}医药科技有限公司", "{city}{stem}医疗设备贸易有限公司"],
    "lab": ["{city}{stem}医学检验实验室有限公司", "{city}{stem}临床检验中心", "{city}{stem}生物科技有限公司"],
    "supermarket": ["{city}{stem}超市连锁有限公司", "{city}{stem}购物广场有限公司", "{city}{stem}生鲜超市有限公司"],
    "convenience": ["{city}{stem}便利店连锁有限公司", "{city}{stem}便利超市有限公司"],
    "wholesale": ["{city}{stem}食品贸易有限公司", "{city}{stem}商贸有限公司", "{city}{stem}副食品批发有限公司"],
    "ecommerce": ["{city}{stem}电子商务有限公司", "{city}{stem}网络科技有限公司"],
    "catering": ["{city}{stem}餐饮管理有限公司", "{city}{stem}酒家有限公司", "{city}{stem}茶餐厅连锁有限公司"],
    "manufacturing": ["{city}{stem}精密制造有限公司", "{city}{stem}机械股份有限公司", "{city}{stem}电子科技有限公司",
                      "{city}{stem}新材料有限公司"],
    "finance": ["{city}{stem}融资租赁有限公司", "{city}{stem}投资管理有限公司", "{city}{stem}保险代理有限公司"],
    "education": ["{city}{stem}教育科技有限公司", "{city}{stem}职业技术学校", "{city}{stem}培训学校"],
    "logistics": ["{city}{stem}物流有限公司", "{city}{stem}供应链管理有限公司", "{city}{stem}快运有限公司"],
    "internet": ["{city}{stem}网络科技有限公司", "{city}{stem}信息技术有限公司", "{city}{stem}软件有限公司"],
}
FALLBACK_PATTERNS = ["{city}{stem}科技有限公司", "{city}{stem}实业有限公司"]
# 事业单位 (public hospitals, schools) register under 12; enterprises under 91.
PUBLIC_INSTITUTIONS = {"hospital_public", "education"}

HOSPITAL_TITLES = [
    ("院长", "decision_maker"), ("副院长", "decision_maker"), ("设备科主任", "gatekeeper"),
    ("采购办主任", "gatekeeper"), ("信息科主任", "influencer"), ("放射科主任", "influencer"),
    ("检验科主任", "influencer"), ("骨科主任", "influencer"), ("设备科工程师", "user"), ("护士长", "user"),
]
TITLES = {
    "hospital_public": HOSPITAL_TITLES,
    "hospital_private": HOSPITAL_TITLES,
    "clinic": [("院长", "decision_maker"), ("总经理", "decision_maker"), ("运营主管", "influencer"),
               ("采购主管", "gatekeeper"), ("主治医师", "user")],
    "distributor": [("总经理", "decision_maker"), ("副总经理", "decision_maker"), ("采购经理", "gatekeeper"),
                    ("产品经理", "influencer"), ("销售总监", "influencer"), ("商务专员", "user")],
    "lab": [("实验室主任", "decision_maker"), ("总经理", "decision_maker"), ("质量负责人", "influencer"),
            ("采购经理", "gatekeeper"), ("检验技师", "user")],
    "retail_fmcg": [("总经理", "decision_maker"), ("采购总监", "decision_maker"), ("品类经理", "influencer"),
                    ("采购经理", "gatekeeper"), ("门店运营经理", "user"), ("店长", "user"), ("财务经理", "gatekeeper")],
    "saas_b2b": [("总经理", "decision_maker"), ("CIO", "decision_maker"), ("IT经理", "influencer"),
                 ("采购经理", "gatekeeper"), ("业务部门负责人", "influencer"), ("系统管理员", "user"),
                 ("财务总监", "gatekeeper")],
}
GENERIC_TITLES = [("总经理", "decision_maker"), ("采购经理", "gatekeeper"), ("技术负责人", "influencer"),
                  ("业务主管", "user")]

SIZE_WEIGHTS = {
    "hospital_public": {"medium": 15, "large": 50, "enterprise": 35},
    "hospital_private": {"small": 20, "medium": 50, "large": 30},
    "clinic": {"micro": 40, "small": 50, "medium": 10},
    "convenience": {"micro": 20, "small": 40, "medium": 30, "large": 10},
}
DEFAULT_SIZE_WEIGHTS = {"micro": 5, "small": 30, "medium": 40, "large": 20, "enterprise": 5}
SOURCE_WEIGHTS = {"referral": 20, "exhibition": 15, "website": 15, "cold_call": 20, "partner": 15,
                  "bidding": 10, "other": 5}

ACTIVITY_KINDS = {"call": 30, "wechat": 25, "visit": 18, "email": 10, "meeting": 8, "demo": 9}
ACTIVITY_MINUTES = {"call": (5, 30), "wechat": (0, 15), "visit": (60, 180), "email": (0, 10),
                    "meeting": (60, 150), "demo": (45, 120)}
SUBJECTS = {
    "call": ["电话回访，了解需求进展", "电话沟通报价细节", "电话邀约上门演示", "电话跟进采购时间表", "电话确认合同条款"],
    "visit": ["首次上门拜访", "拜访采购负责人", "现场调研使用场景", "拜访决策人汇报方案", "陪同技术人员现场勘查"],
    "demo": ["产品演示", "线上演示核心功能", "现场试用与培训", "试用反馈收集"],
    "wechat": ["微信沟通报价单", "微信发送产品资料", "微信确认会议时间", "微信跟进试用反馈"],
    "email": ["邮件发送技术方案", "邮件发送正式报价", "邮件确认合同草案", "邮件发送案例资料"],
    "meeting": ["需求研讨会", "商务谈判会议", "方案评审会", "合同条款沟通会", "季度业务回顾会"],
}
CONCLUSIONS = [
    "确认了交付周期", "客户对价格有顾虑", "客户要求补充同类案例", "预算已获批，等待采购流程",
    "竞争对手报价更低，需要调整方案", "决策人认可方案，进入内部审批", "客户希望分期付款", "需要提供资质文件",
    "采购计划推迟到下季度", "约定下周再次拜访", "客户关注售后响应时间", "对参数有疑问，需要售前支持",
    "同意进入商务谈判", "客户暂无新的采购计划", "客户希望增加培训服务", "付款条件基本谈妥",
]
TEMPLATE_CONCLUSIONS = {
    "medical_devices": ["引荐了信息科技术负责人", "设备科确认了安装场地", "科室主任认可试用效果", "需要进入医院集采目录"],
    "retail_fmcg": ["同意新品进场试销", "要求提供陈列支持", "确认了账期条件", "门店动销数据良好"],
    "saas_b2b": ["引荐了IT技术负责人", "POC环境已搭建", "安全合规部门提出问题清单", "需要与现有ERP集成"],
}
OPP_SUFFIX = {"medical_devices": "采购项目", "retail_fmcg": "供货合作", "saas_b2b": "项目"}
LOSS_REASONS = {"quote_delay": 30, "solution_mismatch": 25, "competitor": 25, "customer_churn": 8,
                "budget": 7, "no_decision": 5}
LOSS_NOTES = {
    "quote_delay": ["报价晚于竞争对手一周", "内部审批慢，错过报价窗口", "报价单反复修改，客户失去耐心"],
    "solution_mismatch": ["方案不满足客户的参数要求", "客户需要定制功能，我方无法支持", "配置与预算不匹配"],
    "competitor": ["竞争对手低价中标", "客户选择了原有供应商", "竞品提供了更长的质保"],
    "customer_churn": ["客户合并重组，项目取消", "客户转向其他供应商", "客户业务收缩"],
    "budget": ["预算被削减", "资金未到位"],
    "no_decision": ["客户内部意见不一致，项目搁置", "决策人调岗，项目暂停"],
}
CUSTOMER_NOTES = ["重点跟进客户", "去年有过合作", "由老客户转介绍", "对售后服务要求高", "采购流程较长", ""]
MOBILE_PREFIXES = ["130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
                   "150", "151", "152", "153", "155", "156", "157", "158", "159",
                   "180", "181", "182", "183", "184", "185", "186", "187", "188", "189"]
_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


# --------------------------------------------------------------------------- plan data

@dataclass
class _OppPlan:
    name: str
    product_codes: list[str]
    amount: int
    path: list[str]  # stage codes, first = creation stage
    times: list[dt.datetime]  # one per path entry
    outcome: str  # open / won / lost
    expected_close: dt.date
    stale: bool = False
    loss_reason: str = ""
    loss_note: str = ""
    last_progress: dt.datetime | None = None

    @property
    def active_until(self) -> dt.datetime | None:
        """Activities after this moment are not linked to the opportunity."""
        if self.outcome != "open" or self.stale:
            return self.times[-1]
        return None


@dataclass
class _ActPlan:
    kind: str
    when: dt.datetime
    logged_at: dt.datetime
    minutes: int
    subject: str
    conclusion: str
    actor: str
    opp: int | None = None
    contact: int | None = None


@dataclass
class _CustPlan:
    owner: str
    fields: dict
    contacts: list[dict]
    created_at: dt.datetime
    status: str
    churned_at: dt.datetime | None = None
    opps: list[_OppPlan] = field(default_factory=list)
    activities: list[_ActPlan] = field(default_factory=list)
    members: list[tuple[str, str, dt.datetime]] = field(default_factory=list)  # user, access, joined


@dataclass
class _Owner:
    """Someone who owns customers: where they sell and how active they are."""

    username: str
    team_cities: list[tuple[str, int]]
    region: str
    weight: float
    quiet_days: int  # last activity/progress is at least this many days ago (1 = yesterday)


class _Planner:
    """Decides the data in memory from one random stream; no database access, so the same seed gives the same plan."""

    def __init__(self, rng: random.Random, tpl: dict, stages: list[tuple[str, str]], products: dict[str, int],
                 months: int, today: dt.date):
        self.rng = rng
        self.tpl = tpl
        self.code = tpl["code"]
        self.open_stages = [c for c, k in stages if k == Stage.Kind.OPEN]
        self.won_stage = next(c for c, k in stages if k == Stage.Kind.WON)
        self.lost_stage = next(c for c, k in stages if k == Stage.Kind.LOST)
        self.products = products  # code → list price (whole yuan)
        self.lines = [[p["code"] for p in line["products"]] for line in tpl["product_lines"]]
        self.product_names = {p["code"]: p["name"] for line in tpl["product_lines"] for p in line["products"]}
        self.today = today
        self.span = max(30, round(months * 30.4))
        self.names: set[str] = set()
        self.phones: set[str] = set()
        self.codes: set[str] = set()
        self.person_names: set[str] = set()

    # -- small helpers

    def pick(self, weights: dict):
        keys = list(weights)
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    def at(self, days_ago: int) -> dt.datetime:
        """A working-hours moment `days_ago` days before today; weekends mostly move to Friday."""
        day = self.today - dt.timedelta(days=days_ago)
        # Draw the number on every call: if only weekend days drew it, the rest of the plan (owners,
        # statuses, ...) would depend on which weekdays the dates fall on, i.e. on the day of the run.
        move = self.rng.random() < 0.85
        if day.weekday() >= 5 and move:
            day -= dt.timedelta(days=day.weekday() - 4)
        hour = self.rng.choice([9, 9, 10, 10, 10, 11, 11, 13, 14, 14, 15, 15, 16, 16, 17, 18])
        return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, self.rng.randrange(0, 60, 5))))

    def anchor(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.today, dt.time.min))

    def person(self, unique: bool = False) -> tuple[str, str, str]:
        """(name, surname pinyin, given pinyin)."""
        for _attempt in range(200):
            s, sp = self.rng.choice(SURNAMES)
            g, gp = self.rng.choice(GIVEN)
            if not unique or s + g not in self.person_names:
                self.person_names.add(s + g)
                return s + g, sp, gp
        raise DemoError("ran out of person names")  # cannot happen with the list sizes above

    def mobile(self) -> str:
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def landline(self, area: str) -> str:
        while True:
            number = f"{area}-{self.rng.randint(2, 8)}{self.rng.randrange(10**7):07d}"
            digits = number.replace("-", "")
            if digits not in self.phones:
                self.phones.add(digits)
                return number

    def credit_code(self, industry: str, division: str) -> str:
        prefix = "12" if industry in PUBLIC_INSTITUTIONS else "91"
        while True:
            body = "".join(self.rng.choice(_CODE_CHARS) for _ in range(8))
            # Organisation code check digit (GB 11714) so the embedded 9-char code looks real too.
            total = sum(
                (int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, [3, 7, 9, 10, 5, 8, 4, 2], strict=True)
            )
            c9 = 11 - total % 11
            org = body + ("X" if c9 == 10 else "0" if c9 == 11 else str(c9))
            first17 = prefix + division + org
            code = first17 + credit_code_check_char(first17)
            if code not in self.codes:
                self.codes.add(code)
                return code

    # -- customers

    def company_name(self, industry: str, city: str, district: str) -> tuple[str, str]:
        patterns = NAME_PATTERNS.get(industry, FALLBACK_PATTERNS)
        city_py = CITIES[city][0]
        for _attempt in range(500):
            pattern = self.rng.choice(patterns)
            stem, stem_py = self.rng.choice(STEMS)
            num = self.rng.choice(CN_NUMS)
            name = pattern.format(city=city, stem=stem, num=num, district=district)
            norm = normalize_name(name)
            if norm not in self.names:
                self.names.add(norm)
                slug = stem_py if "{stem}" in pattern else f"{city_py}h{CN_NUMS.index(num) + 1}"
                return name, slug
        # Very large runs: fall back to a numbered branch name, still unique.
        n = len(self.names) + 1
        name = f"{city}{self.rng.choice(STEMS)[0]}第{n}分公司"
        self.names.add(normalize_name(name))
        return name, f"{city_py}{n}"

    def contact(self, titles: list[tuple[str, str]], used_titles: set[str], domain: str, primary: bool) -> dict:
        name, sp, gp = self.person()
        choices = [t for t in titles if t[0] not in used_titles] or titles
        title, role = self.rng.choice(choices)
        used_titles.add(title)
        style_pool = self.tpl.get("style_tags", [])
        k = self.rng.choice([0, 1, 1, 2])
        data = {
            "name": name, "title": title, "decision_role": role, "is_primary": primary,
            "style_tags": self.rng.sample(style_pool, min(k, len(style_pool))),
            "mobile": self.mobile(),
        }
        if self.rng.random() < 0.45:
            data["email"] = f"{sp}.{gp}@{domain}"
        if self.rng.random() < 0.6:
            data["wechat"] = f"{sp}{gp}{self.rng.randint(10, 9999)}"
        if self.rng.random() < 0.2:
            data["qq"] = str(self.rng.randint(10**5, 3 * 10**9))
        return data

    def customer(self, owner: _Owner, first: bool = False) -> _CustPlan:
        """Plan one customer; an owner's `first` one is active with a live deal (see `_plan`)."""
        rng = self.rng
        industries = self.tpl["industries"]
        industry = rng.choice(industries)["code"]
        cities = owner.team_cities
        city = rng.choices([c for c, _w in cities], weights=[w for _c, w in cities])[0]
        city_py, area, divisions, districts = CITIES[city]
        district = rng.choice(districts)
        name, slug = self.company_name(industry, city, district)
        status = self.pick({"active": 75, "lead": 18, "churned": 7})
        if first:
            status = "active"
        fields = {
            "name": name,
            "industry": industry,
            "size_band": self.pick(SIZE_WEIGHTS.get(industry, DEFAULT_SIZE_WEIGHTS)),
            "region": owner.region,
            "city": city,
            "source": self.pick({**SOURCE_WEIGHTS, "bidding": 35} if industry == "hospital_public" else SOURCE_WEIGHTS),
            "status": "lead" if status == "lead" else "active",
            "address": f"{city}市{district}{rng.choice(ROADS)}{rng.randint(1, 999)}号",
            "notes": rng.choice(CUSTOMER_NOTES),
        }
        tag_pool = self.tpl.get("customer_tags", [])
        k = rng.choice([0, 0, 1, 1, 1, 2])
        fields["tags"] = rng.sample(tag_pool, min(k, len(tag_pool)))
        if rng.random() < 0.7:
            fields["phone"] = self.landline(area)
        if rng.random() < 0.5:
            fields["credit_code"] = self.credit_code(industry, rng.choice(divisions))
        domain = f"{slug}{'-' + self.code.split('_')[0] if rng.random() < 0.5 else ''}.com.cn"
        titles = TITLES.get(industry) or TITLES.get(self.code) or GENERIC_TITLES
        used: set[str] = set()
        contacts = [self.contact(titles, used, domain, primary=i == 0)
                    for i in range(rng.choices([1, 2, 3], weights=[30, 45, 25])[0])]

        last = owner.quiet_days  # days ago of the owner's latest possible event
        lo = min(last + 7, self.span)
        hi = min(self.span, 75) if status == "lead" else self.span
        created_ago = rng.randint(lo, max(lo, hi))
        plan = _CustPlan(owner=owner.username, fields=fields, contacts=contacts, created_at=self.at(created_ago),
                         status=status)
        if status == "churned":
            churn_ago = rng.randint(last, max(last, created_ago - 10))
            plan.churned_at = self.at(churn_ago)
            last = churn_ago
        # Opportunities.
        if status == "lead":
            n_opps = rng.choices([0, 1], weights=[40, 60])[0]
        elif status == "churned":
            n_opps = rng.choice([1, 2])
        else:
            n_opps = rng.choices([1, 2, 3, 4], weights=[25, 40, 25, 10])[0]
        for i in range(n_opps):
            plan.opps.append(self.opportunity(plan, owner, created_ago, last, status, live=first and i == 0))
        # Activities: the first one is the contact that created the customer.
        n_acts = {"active": rng.randint(8, 12), "lead": rng.randint(4, 7), "churned": rng.randint(5, 9)}[status]
        days = [created_ago] + [rng.randint(last, created_ago) for _ in range(n_acts - 1)]
        for ago in days:
            plan.activities.append(self.activity(plan, owner.username, self.at(ago)))
        plan.activities.sort(key=lambda a: a.when)
        opener = plan.activities[0]
        opener.kind = rng.choice(["visit", "call"])
        opener.subject = "首次上门拜访，了解需求" if opener.kind == "visit" else "电话初次沟通，了解需求"
        opener.minutes = rng.randint(*ACTIVITY_MINUTES[opener.kind])
        if plan.activities[0].when < plan.created_at:
            plan.created_at = plan.activities[0].when
        self.link(plan)
        # Tags that follow from the history.
        if any(o.outcome == "won" for o in plan.opps) and "老客户复购" in tag_pool and rng.random() < 0.3:
            plan.fields["tags"] = [*plan.fields["tags"], "老客户复购"]
        return plan

    # -- opportunities

    def opportunity(self, cust: _CustPlan, owner: _Owner, created_ago: int, last: int, status: str,
                    live: bool = False) -> _OppPlan:
        rng = self.rng
        n_open = len(self.open_stages)
        if status == "lead":
            outcome = "open"
        elif status == "churned":
            outcome = self.pick({"won": 30, "lost": 70})
        else:
            outcome = self.pick({"open": 55, "won": 25, "lost": 20})
        if live:
            outcome = "open"
        loss_reason = loss_note = ""
        if outcome == "open":
            if status == "lead":
                k = rng.randint(0, min(1, n_open - 1))
            else:
                k = rng.choices(range(n_open), weights=[max(1, n_open + 1 - i) for i in range(n_open)])[0]
            path = self.open_stages[: k + 1]
        elif outcome == "won":
            path = [*self.open_stages, self.won_stage]
        else:
            path = [*self.open_stages[: rng.randint(1, n_open)], self.lost_stage]
            loss_reason = "customer_churn" if status == "churned" and rng.random() < 0.7 else self.pick(LOSS_REASONS)
            loss_note = rng.choice(LOSS_NOTES[loss_reason])
        steps = len(path) - 1
        stale = outcome == "open" and rng.random() < 0.2 and not live
        # Days ago of the last stage change.
        if outcome == "open":
            tail = rng.randint(8, 30) if stale else rng.randint(0, 5)
            end_ago = last + tail
        else:
            end_ago = rng.randint(last, max(last, created_ago - steps * 3))
        end_ago = min(end_ago, created_ago)
        start_lo = min(created_ago, end_ago + steps * 6)
        start_ago = rng.randint(start_lo, created_ago)
        days = sorted((rng.randint(end_ago, start_ago) for _ in range(max(0, steps - 1))), reverse=True)
        stamps = [self.at(start_ago), *(self.at(d) for d in days)] + ([self.at(end_ago)] if steps else [])
        stamps.sort()
        for i in range(1, len(stamps)):  # several changes on one day still need an order
            if stamps[i] <= stamps[i - 1]:
                stamps[i] = stamps[i - 1] + dt.timedelta(minutes=rng.randint(10, 50))
        stamps = [max(s, cust.created_at) for s in stamps]
        for i in range(1, len(stamps)):
            if stamps[i] <= stamps[i - 1]:
                stamps[i] = stamps[i - 1] + dt.timedelta(minutes=rng.randint(10, 50))
        # Products and amount in line with list prices.
        big_ok = cust.fields["size_band"] not in {"micro", "small"}
        line = rng.choice(self.lines)
        candidates = [c for c in line if big_ok or self.products[c] < 1_000_000] or line
        codes = [rng.choice(candidates)]
        if rng.random() < 0.3 and len(self.lines) > 1:
            other = rng.choice([ln for ln in self.lines if ln is not line])
            codes.append(rng.choice(other))
        amount = 0
        for c in codes:
            amount += self.products[c] * self.quantity(self.products[c])
        amount = amount * rng.randint(82, 100) // 100
        step = 1000 if amount >= 100_000 else 100 if amount >= 1000 else 1
        amount = max(step, amount // step * step)
        if outcome == "open":
            expected = self.today + dt.timedelta(days=rng.randint(-10, 120))
        else:
            expected = max(stamps[0].date(), stamps[-1].date() + dt.timedelta(days=rng.randint(-20, 10)))
        short = normalize_name(cust.fields["name"])  # without 有限公司 & co.
        name = f"{short}·{self.product_names[codes[0]]}{'等' if len(codes) > 1 else ''}{OPP_SUFFIX.get(self.code, '项目')}"
        return _OppPlan(name=name[:200], product_codes=codes, amount=amount, path=path, times=stamps,
                        outcome=outcome, expected_close=expected, stale=stale, loss_reason=loss_reason,
                        loss_note=loss_note)

    def quantity(self, price: int) -> int:
        rng = self.rng
        if price < 1000:  # per-box retail goods
            return rng.randrange(200, 5001, 50)
        if price < 10_000:
            return rng.randint(3, 12)
        if price < 100_000:
            return rng.randint(1, 6)
        if price < 1_000_000:
            return rng.choices([1, 2, 3], weights=[60, 30, 10])[0]
        return rng.choices([1, 2], weights=[90, 10])[0]

    # -- activities

    def activity(self, cust: _CustPlan, actor: str, when: dt.datetime) -> _ActPlan:
        rng = self.rng
        kind = self.pick(ACTIVITY_KINDS)
        lo, hi = ACTIVITY_MINUTES[kind]
        conclusions = CONCLUSIONS + TEMPLATE_CONCLUSIONS.get(self.code, [])
        # Most check-ins within 2 hours; some late, a few days late (F2 has something to flag).
        delay = rng.choices(
            [rng.randint(5, 110), rng.randint(130, 1200), rng.randint(1440, 4320)], weights=[80, 15, 5]
        )[0]
        logged = when + dt.timedelta(minutes=delay)
        if logged >= self.anchor():
            logged = when + (self.anchor() - when) / 2
        return _ActPlan(
            kind=kind, when=when, logged_at=logged, minutes=rng.randint(lo, hi),
            subject=rng.choice(SUBJECTS[kind]), conclusion=rng.choice(conclusions), actor=actor,
            contact=rng.randrange(len(cust.contacts)) if rng.random() < 0.75 else None,
        )

    def link(self, cust: _CustPlan) -> None:
        """Attach activities to opportunities that were live at the time; then derive last progress."""
        for act in cust.activities:
            live = [i for i, o in enumerate(cust.opps)
                    if o.times[0] <= act.when and (o.active_until is None or act.when <= o.active_until)]
            act.opp = self.rng.choice(live) if live and self.rng.random() < 0.7 else None
        for i, o in enumerate(cust.opps):
            times = [o.times[-1], *(a.when for a in cust.activities if a.opp == i)]
            o.last_progress = max(times)


# --------------------------------------------------------------------------- entry point

def generate(*, reps: int = 12, customers: int = 300, months: int = 6, seed: int = 2026,
             template: str | None = None) -> str:
    """Load the demo into an empty database; returns a printable summary."""
    started = time.perf_counter()
    if reps < 3:
        raise DemoError(_("销售人数至少为 3（包含文档中的 3 个销售账号）"))
    if customers < 0:
        raise DemoError(_("客户数不能为负数"))
    if months < 1:
        raise DemoError(_("历史月数至少为 1"))
    code = template or settings.TUIJIN_INDUSTRY_TEMPLATE
    templates = industry_templates()
    if code not in templates:
        raise DemoError(_("未知的行业模板：%(code)s（可选：%(choices)s）") % {
            "code": code, "choices": ", ".join(templates)})
    tpl = templates[code]
    with transaction.atomic():
        if User.objects.exists():
            raise DemoError(_("数据库中已有用户，演示数据只能载入空数据库。请换用新的数据库（或删除 var/tuijin.sqlite3 后重新 migrate）再运行。"))
        # Re-grade each customer once at the end instead of after every stage move.
        with grading_deferred():
            result = _generate(rng=random.Random(seed), reps=reps, customers=customers, months=months, tpl=tpl)
        _load_extensions(result, seed=seed, months=months)
    elapsed = time.perf_counter() - started
    return _summary(result, tpl=tpl, seed=seed, months=months, elapsed=elapsed)


# Later capabilities add their demo data here: each module has
# `load(*, rng: random.Random, months: int) -> dict[str, int]` (counts for the summary)
# and runs inside the same transaction, after customers, pipeline and activities exist.
DEMO_EXTENSIONS = ["tuijin.demo.key_accounts", "tuijin.goals.demo", "tuijin.health.demo", "tuijin.forecasting.demo"]


# Summary labels for the extensions' count keys (the keys stay plain identifiers for code and tests).
# "demo" context: the same words elsewhere in the catalogue are headings, not counts.
EXTENSION_LABELS = {
    "key-account reorders": pgettext_lazy("demo", "大客户复购商机"),
    "goal objectives": pgettext_lazy("demo", "目标"),
    "key results": pgettext_lazy("demo", "关键结果"),
    "goal targets": pgettext_lazy("demo", "分解目标值"),
    "goal reports": pgettext_lazy("demo", "目标偏差报告"),
    "graded customers": pgettext_lazy("demo", "已评级客户"),
    "weekly alignments": pgettext_lazy("demo", "周目标对齐"),
    "blockers": pgettext_lazy("demo", "待协调事项"),
    "red lights": pgettext_lazy("demo", "红灯"),
    "yellow lights": pgettext_lazy("demo", "黄灯"),
    "daily_reports": pgettext_lazy("demo", "销售日报"),
    "forecast_lines": pgettext_lazy("demo", "预测行"),
    "daily_reports_today": pgettext_lazy("demo", "今日已交日报"),
    "forecast_corrections": pgettext_lazy("demo", "数据修正申请"),
}


def _load_extensions(result: _Result, *, seed: int, months: int) -> None:
    for i, path in enumerate(DEMO_EXTENSIONS, start=1):
        if importlib.util.find_spec(path) is None:
            continue
        counts = importlib.import_module(path).load(rng=random.Random(seed * 1000 + i), months=months)
        result.extra_counts.update(counts or {})


@dataclass
class _Result:
    users: list[User]
    quiet: list[str]
    counts: dict[str, int]
    extra_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Plan:
    """Everything `_write` needs, decided without the database (so it can be checked for any day)."""

    extra_reps: list[tuple[str, str, str]]  # username, display name, team
    north_manager: bool
    quiet: list[str]
    owners: list[_Owner]
    customers: list[_CustPlan]
    planner: _Planner


def _plan(*, rng: random.Random, reps: int, customers: int, months: int, tpl: dict,
          stages: list[tuple[str, str]], prices: dict[str, int], today: dt.date) -> _Plan:
    """Decide users, owners and customers for `today` (a local date).

    Guarantees, whatever the day (tests/demo/test_generate.py checks them for every day of a year):
    each owner's first customer is active with a live (open, not stale) deal, and the first customers go to
    the owners in turn, so with at least two customers per owner every documented login has customers,
    the quiet rep has a customer to transfer and every non-quiet rep has a deal progressed in the last days.
    """
    planner = _Planner(rng, tpl, stages, prices, months, today)
    planner.person_names.update(display for _u, _r, display, _unit, _m in LOGINS)

    # Extra reps: fill the emptiest team first; a north region manager appears with the first north rep.
    region_manager = {"east": "manager.east", "south": "manager.south"}
    team_of = {"rep.east1": "shanghai_team", "rep.east2": "hangzhou_team", "rep.south1": "guangzhou_team"}
    team_count = {t: 0 for t in TEAM_FILL_ORDER}
    for t in team_of.values():
        team_count[t] += 1
    numbering = {"east": 2, "south": 1, "north": 0}
    extra: list[tuple[str, str, str]] = []
    for _i in range(reps - 3):
        team = min(TEAM_FILL_ORDER, key=lambda t: (team_count[t], TEAM_FILL_ORDER.index(t)))
        team_count[team] += 1
        region_key, _region = TEAM_REGION[team]
        region_manager.setdefault(region_key, f"manager.{region_key}")
        numbering[region_key] += 1
        username = f"rep.{region_key}{numbering[region_key]}"
        display, _sp, _gp = planner.person(unique=True)
        extra.append((username, display, team))
        team_of[username] = team

    # Owners: reps carry most customers, managers a few key accounts.
    quiet_reps = ["rep.east2"]
    extra_reps = [u for u in team_of if u not in {"rep.east1", "rep.east2", "rep.south1"}]
    quiet_reps += sorted(rng.sample(extra_reps, round(len(extra_reps) * 0.2)), key=extra_reps.index)
    owners: list[_Owner] = []
    for username, team in team_of.items():
        region_key, region = TEAM_REGION[team]
        quiet = rng.randint(7, 15) if username in quiet_reps else 1
        owners.append(_Owner(username, TEAM_CITIES[team], region, rng.uniform(0.6, 1.4), quiet))
    for region_key, username in region_manager.items():
        cities = [c for t in REGION_TEAMS[region_key] for c in TEAM_CITIES[t]]
        owners.append(_Owner(username, cities, TEAM_REGION[REGION_TEAMS[region_key][0]][1], 0.2, 1))

    # The first two rounds go to every owner in turn (the first customer of each is active with a live
    # deal); the rest by weight. Drawing a random number in every round keeps the stream the same shape.
    weights = [o.weight for o in owners]
    plans = []
    for i in range(customers):
        drawn = rng.choices(owners, weights=weights)[0]
        owner = owners[i % len(owners)] if i < 2 * len(owners) else drawn
        plans.append(planner.customer(owner, first=i < len(owners)))
    # Members first, then the recent-progress top-up: the top-up draws random numbers only for some
    # reps on some days, so nothing planned after it may use the same stream.
    _plan_members(rng, plans, {code for code, _kind in stages})
    _ensure_recent_progress(planner, plans, owners)
    return _Plan(extra_reps=extra, north_manager="north" in region_manager, quiet=quiet_reps, owners=owners,
                 customers=plans, planner=planner)


def _generate(*, rng: random.Random, reps: int, customers: int, months: int, tpl: dict) -> _Result:
    password = settings.TUIJIN_DEMO_PASSWORD
    org = build_org(password=password)
    users = org.users
    pipeline = industry_template_apply(actor=users["admin"], code=tpl["code"])
    stages = {s.code: s for s in pipeline.stages.order_by("order")}
    product_codes = [p["code"] for line in tpl["product_lines"] for p in line["products"]]
    products = {p.code: p for p in Product.objects.filter(code__in=product_codes)}
    plan = _plan(
        rng=rng, reps=reps, customers=customers, months=months, tpl=tpl,
        stages=[(s.code, s.kind) for s in stages.values()],
        prices={c: int(products[c].list_price) for c in product_codes}, today=timezone.localdate(),
    )
    if plan.north_manager:
        users["manager.north"] = user_create(
            actor=users["admin"], username="manager.north", password=password, role=User.Role.MANAGER,
            display_name="赵经理", org_unit=org.units["north"], manager=users["director"],
            email="manager.north@demo.tuijin.local", validate_password=False,
        )
    region_manager = {"east": "manager.east", "south": "manager.south", "north": "manager.north"}
    for username, display, team in plan.extra_reps:
        users[username] = user_create(
            actor=users["admin"], username=username, password=password, role=User.Role.REP,
            display_name=display, org_unit=org.units[team], manager=users[region_manager[TEAM_REGION[team][0]]],
            email=f"{username}@demo.tuijin.local", validate_password=False,
        )
    return _write(users=users, plans=plan.customers, stages=stages, products=products, planner=plan.planner,
                  quiet=plan.quiet)


def _ensure_recent_progress(planner: _Planner, plans: list[_CustPlan], owners: list[_Owner]) -> None:
    """Every non-quiet rep with open deals has progressed one within 3 days (green unless chosen red)."""
    recent = planner.anchor() - dt.timedelta(days=3)
    for owner in owners:
        if owner.quiet_days > 1:
            continue
        open_opps = [(c, i, o) for c in plans if c.owner == owner.username
                     for i, o in enumerate(c.opps) if o.outcome == "open" and not o.stale]
        if not open_opps or max(o.last_progress for _c, _i, o in open_opps) >= recent:
            continue
        cust, idx, opp = max(open_opps, key=lambda t: t[2].last_progress)
        act = planner.activity(cust, owner.username, planner.at(1))
        act.opp = idx
        cust.activities.append(act)
        cust.activities.sort(key=lambda a: a.when)
        opp.last_progress = max(opp.last_progress, act.when)


def _plan_members(rng: random.Random, plans: list[_CustPlan], stages: set[str]) -> None:
    """Cross-role team members (C1): presales on some, delivery on won, legal on contract stage, finance."""
    for plan in plans:
        if plan.status == "lead":
            continue
        joined = plan.created_at + dt.timedelta(days=rng.randint(1, 10))
        if rng.random() < 0.08 and len(plan.activities) > 1:
            # Presales logs its own demo, which is a write on the customer.
            act = rng.choice(plan.activities[1:])
            act.actor, act.kind, act.subject = "presales", "demo", "售前技术交流与产品演示"
            plan.members.append(("presales", "write", min(joined, act.when - dt.timedelta(days=1))))
        if any(o.outcome == "won" for o in plan.opps) and rng.random() < 0.3:
            won = min(o.times[-1] for o in plan.opps if o.outcome == "won")
            plan.members.append(("delivery", "read", won + dt.timedelta(hours=rng.randint(2, 48))))
        contract = [o for o in plan.opps if o.outcome == "open" and o.path[-1] == "contract"]
        if contract and "contract" in stages:
            plan.members.append(("legal", "read", contract[0].times[-1] + dt.timedelta(minutes=30)))
        if rng.random() < 0.03:
            plan.members.append(("finance", "read", joined))
        plan.members = [(u, a, max(plan.created_at, when)) for u, a, when in plan.members]


def _write(*, users: dict, plans: list[_CustPlan], stages: dict, products: dict, planner: _Planner,
           quiet: list[str]) -> _Result:
    cust_times: list[tuple[int, dict]] = []
    contact_times: list[tuple[int, dt.datetime]] = []
    opp_times: list[tuple[int, dict]] = []
    act_times: list[tuple[int, dt.datetime]] = []
    member_times: list[tuple[int, dt.datetime]] = []
    counts = {"customers": 0, "contacts": 0, "opportunities": 0, "activities": 0}
    transfer_candidates = []
    for plan in plans:
        owner = users[plan.owner]
        customer = customer_create(actor=owner, owner=owner, contacts=plan.contacts, **plan.fields)
        contacts = list(Contact.objects.filter(customer=customer).order_by("id"))
        counts["customers"] += 1
        counts["contacts"] += len(contacts)
        contact_times += [(c.pk, plan.created_at) for c in contacts]
        opps = []
        for op in plan.opps:
            opp = opportunity_create(
                actor=owner, customer=customer, owner=owner, pipeline=stages[op.path[0]].pipeline,
                stage=stages[op.path[0]], name=op.name, amount=op.amount, expected_close_date=op.expected_close,
                products=[products[c].pk for c in op.product_codes],
            )
            for code in op.path[1:]:
                stage = stages[code]
                lost = stage.kind == Stage.Kind.LOST
                opp = opportunity_move_stage(
                    actor=owner, opportunity=opp, stage=stage,
                    loss_reason=op.loss_reason if lost else "", loss_note=op.loss_note if lost else "",
                )
            opps.append(opp)
            closed = op.outcome != "open"
            opp_times.append((opp.pk, {
                "created_at": op.times[0], "stage_entered_at": op.times[-1],
                "closed_at": op.times[-1] if closed else None, "last_progress_at": op.last_progress,
                "updated_at": op.last_progress, "expected_close_date": op.expected_close,
            }))
        counts["opportunities"] += len(opps)
        if plan.status == "churned":
            customer = customer_update(actor=owner, customer=customer, status=Customer.Status.CHURNED)
        for username, access, joined in plan.members:
            m = customer_member_set(actor=owner, customer=customer, user=users[username], access=access)
            member_times.append((m.pk, joined))
        for act in plan.activities:
            a = activity_create(
                actor=users[act.actor], customer=customer, kind=act.kind, occurred_at=act.when,
                duration_minutes=act.minutes, subject=act.subject, conclusion=act.conclusion,
                opportunity=opps[act.opp] if act.opp is not None else None,
                contact=contacts[act.contact] if act.contact is not None else None,
            )
            act_times.append((a.pk, act.logged_at))
        counts["activities"] += len(plan.activities)
        cust_times.append((customer.pk, {
            "created_at": plan.created_at, "updated_at": plan.churned_at or plan.created_at,
        }))
        if plan.owner == "rep.east2" and plan.status != "churned":
            # Best: an active customer with a live deal, so open opportunities move along.
            rank = (plan.status == "active") + any(o.outcome == "open" for o in plan.opps)
            transfer_candidates.append((-rank, len(transfer_candidates), customer))

    # Backdate what the services stamped as "now" (see the module docstring).
    for pk, values in cust_times:
        Customer.objects.filter(pk=pk).update(**values)
    for pk, when in contact_times:
        Contact.objects.filter(pk=pk).update(created_at=when, updated_at=when)
    for pk, values in opp_times:
        Opportunity.objects.filter(pk=pk).update(**values)
    for pk, when in act_times:
        Activity.objects.filter(pk=pk).update(created_at=when)
    for pk, when in member_times:
        CustomerMember.objects.filter(pk=pk).update(added_at=min(when, planner.anchor()))

    # One transfer, so owner history (负责人变更记录) has an entry: the quiet rep's deal goes to a colleague.
    if transfer_candidates:
        transfer_candidate = min(transfer_candidates)[2]
        customer_transfer(
            actor=users["manager.east"], customers=[transfer_candidate], to_user=users["rep.east1"],
            keep_old_owner=True, old_owner_access="read", reason="原负责人长期未推进，转由上海团队跟进",
        )
        moved_at = planner.anchor() - dt.timedelta(hours=14)  # yesterday 10:00
        OwnerChange.objects.filter(customer=transfer_candidate).update(at=moved_at)
        CustomerMember.objects.filter(customer=transfer_candidate, user=users["rep.east2"]).update(added_at=moved_at)

    all_users = list(User.objects.select_related("org_unit").order_by("id"))
    counts["users"] = len(all_users)
    return _Result(users=all_users, quiet=quiet, counts=counts)


def _summary(result: _Result, *, tpl: dict, seed: int, months: int, elapsed: float) -> str:
    c = result.counts
    lines = [
        _("演示数据已生成：行业模板 %(template)s，随机种子 %(seed)s，%(months)s 个月历史，用时 %(seconds).1f 秒。") % {
            "template": tpl["name"], "seed": seed, "months": months, "seconds": elapsed},
        _("用户 %(users)s · 客户 %(customers)s · 联系人 %(contacts)s · 商机 %(opportunities)s · 跟进记录 %(activities)s")
        % c,
        *([" · ".join(f"{EXTENSION_LABELS.get(k, k)} {v}" for k, v in result.extra_counts.items())]
          if result.extra_counts else []),
        _("长期未推进商机（红灯）的销售：%(names)s") % {"names": ", ".join(result.quiet)},
        "",
        _("演示账号："),
        f"  {_pad(_('用户名'), 16)} {_pad(_('角色'), 14)} {_('姓名')}",
    ]
    for u in result.users:
        lines.append(f"  {_pad(u.username, 16)} {_pad(u.get_role_display(), 14)} {u.display_name}")
    lines += ["", _("密码：环境变量 TUIJIN_DEMO_PASSWORD 的值（默认 tuijin-demo）")]
    return "\n".join(lines)


def _pad(text, width: int) -> str:
    """Left-align in a terminal column: CJK characters take two cells, so str.ljust would misalign them."""
    text = str(text)
    cells = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - cells, 0)
