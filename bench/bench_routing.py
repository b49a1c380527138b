"""How fast the router decides, and how much memory it needs, at 10k, 100k and 1M accounts.

    .venv/bin/python -m bench.bench_routing                  # 10k, 100k and 1M accounts
    .venv/bin/python -m bench.bench_routing --quick          # 10k and 100k
    .venv/bin/python -m bench.bench_routing --accounts 100000        # one size, in this process
    .venv/bin/python -m bench.bench_routing --profile 20000  # cProfile a 20k-lead run

The target (the scaling issue): 100,000 leads against a policy of 500 reps in 20 teams, 50 rules
and 100,000 accounts, at least 20,000 decisions/s on one core, p99 at most 1 ms per decision with
account matching, and a peak RSS of at most 300 MB.

Everything is generated from one seed: the policy YAML (parsed by `parse_policy`, like an admin's
file), the accounts and the leads, so two runs measure the same work. Leads are streamed in
chunks and parsed with `parse_lead` before the clock starts; only `route()` is timed, once per
decision with `perf_counter_ns`. The `RoutingState` is carried along the run the way
`Simulation` carries it (loads, rotations, sticky accounts), so capacity, least-loaded and sticky
accounts behave as they would live. Each size runs twice: with one fixed `now`, and with `now`
advancing 10 ms per lead as live traffic would. Each size runs in its own subprocess, pinned to
one core, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import resource
import subprocess
import sys
import time
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML

from routing import compiled_modules
from routing.accounts import AccountIndex
from routing.company_names import company_key
from routing.decision import Decision, RoutingState
from routing.domains import registrable_domain
from routing.engine import route
from routing.freemail import email_domain_type, is_disposable
from routing.leads import parse_lead
from routing.model import Account, Lead, Outcome, OutOfOffice
from routing.policy import Policy, parse_policy
from routing.simulation import Simulation

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "routing.json"

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
DEFAULT_SEED = 7
DEFAULT_LEADS = 100_000
CHUNK = 1_000  # leads generated and parsed at a time, so the leads never all sit in memory
WARM_UP_LEADS = 500
LIVE_STEP = timedelta(milliseconds=10)

# Friday 6 June 2025, 10:55 in New York: 16:55 in Berlin (reps ending at 17:00 go off during the
# live-clock run), 07:55 in Los Angeles (most West Coast reps not in yet), a public holiday in
# Sweden, and already Saturday in Tokyo and Sydney. Overlapping hours, not everybody in.
START = datetime(2025, 6, 6, 10, 55, tzinfo=ZoneInfo("America/New_York"))

TARGET_RATE = 20_000
TARGET_P99_US = 1_000
TARGET_RSS_MB = 300

# ---------------------------------------------------------------------------------------------
# Word lists. Names are built from them so that tokens repeat the way they do in a real CRM:
# a few very common words ("Global", "Systems"), many surnames, and a long tail of coined names.
# Lists of plain words are written as text and split: they read better than quoted lists.

ADJECTIVES = """
Blue Red Green North South East West Pacific Atlantic Summit Apex Prime Global United First
Bright Silver Golden Iron Cedar Maple Oak Pine River Lake Harbor Stone Granite Crystal Quantum
Vector Nova Stellar Lunar Solar Polar Alpine Coastal Metro Urban Royal Liberty Heritage Pioneer
Frontier Horizon Vertex Zenith Nimbus Cobalt Crimson Emerald Sapphire Onyx Ivory Swift Rapid
Clear Bold True Smart Open Next Modern Classic Central Northern Southern Eastern Western Great
Little Big Grand Noble Civic Pinnacle Keystone Evergreen Redwood Sequoia Aspen Willow Birch
Juniper Sterling Copper Bronze Titan Atlas Orion Phoenix Delta Sigma Omega Alpha Beta Gamma
Astra Aurora Boreal Tidal Highland Prairie Canyon Mesa Sierra Cascade Tundra Savanna Meridian
Equinox Solstice Kinetic Radiant Lucid Vivid Agile Nimble Steady
""".split()  # noqa: SIM905

NOUNS = """
Bridge Peak Ridge Valley Forge Works Point Gate Path Wave Field Grove Haven Crest Rock Hill
Brook Spring Star Sky Leaf Wing Arrow Anchor Beacon Compass Lantern Falcon Eagle Hawk Fox Wolf
Bear Lion Tiger Orca Otter Heron Raven Owl Crane Stag Bison Lynx Panther Island Shore Bay Coast
Trail Road Street Square Circle Tower Castle Mill Barn Orchard Garden Meadow Forest Creek Falls
Ocean Harbour Port Dock Pier Lighthouse Signal Pulse Spark Flame Ember Blaze Frost Storm Thunder
Cloud Rain Mist Dawn Dusk Night Day Sun Moon Comet Planet Orbit Rocket Engine Gear Lever Anvil
Hammer Key Lock Shield Sword Crown Flag Banner Pebble Sand Glass Mirror Prism Lens Thread Loom
Needle Quill Ink
""".split()  # noqa: SIM905

SECTORS = """
Systems Labs Logistics Foods Health Capital Dynamics Analytics Software Technologies Solutions
Partners Consulting Energy Pharma Biosciences Manufacturing Media Studios Networks Robotics
Security Financial Insurance Realty Construction Engineering Motors Aerospace Textiles Brewing
Hospitality Travel Education Learning Medical Diagnostics Therapeutics Retail Apparel Outdoor
Marine Agritech Farms Water Power Data Cloud AI Digital Interactive Games Payments Bank Trust
Legal Advisory Group Holdings Industries Enterprises International Ventures Supply Freight
Packaging Chemicals Materials Metals Mining Pharmacy Clinics Dental Veterinary Fitness Sports
Events Publishing Design Architects Builders Automation Devices Instruments Electronics
Semiconductors Telecom Wireless Mobility Transport Aviation Shipping Trading
""".split()  # noqa: SIM905

SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall",
    "Young", "King", "Wright", "Baker", "Carter", "Mitchell", "Turner", "Parker", "Collins",
    "Morgan", "Cooper", "Reed", "Bailey", "Bell", "Murphy", "Kelly", "O'Brien", "O'Neill", "Byrne",
    "Walsh", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Köhler", "Dubois", "Martin", "Bernard", "Lefèvre", "Moreau", "Laurent",
    "Girard", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "García", "Fernández",
    "López", "Martínez", "González", "Rodríguez", "Sánchez", "Pérez", "Silva", "Santos",
    "Oliveira", "Souza", "Costa", "Pereira", "Tanaka", "Suzuki", "Sato", "Takahashi", "Watanabe",
    "Kim", "Lee", "Park", "Choi", "Nguyen", "Tran", "Chen", "Wang", "Li", "Zhang", "Liu", "Patel",
    "Sharma", "Singh", "Kumar", "Gupta", "Iyer", "Reddy", "Andersson", "Johansson", "Karlsson",
    "Nilsson", "Nielsen", "Hansen", "Jensen", "Larsen", "Virtanen", "Korhonen", "Kowalski",
    "Nowak", "Wiśniewski", "Novák", "Dvořák", "De Vries", "Jansen", "Van Dijk", "Bakker", "Visser",
    "Peeters", "Janssens", "Cohen", "Levi", "Haddad", "Khoury", "Okafor", "Mensah", "Dlamini",
    "Naidoo", "Ivanov", "Petrov", "Yılmaz", "Kaya", "Papadopoulos", "Horvat", "Nagy", "Popescu",
)  # fmt: skip

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Daniel", "Karen", "Matthew", "Emily", "Anthony", "Ashley", "Mark", "Michelle", "Priya",
    "Arjun", "Wei", "Mei", "Hiroshi", "Yuki", "Min-jun", "Ji-woo", "José", "María", "João", "Ana",
    "Luca", "Giulia", "François", "Amélie", "Jürgen", "Lena", "Søren", "Ingrid", "Björn", "Zoë",
    "Chloé", "Łukasz", "Agnieszka", "Ahmed", "Fatima", "Oluwaseun", "Thandiwe", "Noa", "Aisha",
    "Liam", "Olivia", "Noah", "Emma", "Sven", "Astrid", "Mateo", "Valentina", "Siobhán", "Seán",
    "Dmitri", "Olga",
)  # fmt: skip

# Coined brand names ("Kalivo", "Zentrexa") are made of these. There are enough of them that an
# unknown company rarely shares its name with an account by chance, as in a real CRM.
SYLLABLES = """
ka li vo ze tro va nex qua ri tel mo lu vi ra xo fi da ne on ix ar go su pe ta mi ko ba do re sa
lo ve zu ny al en or is bri cor dex fen gra hal jin kel lum mar nor pax ros sil tor ul vel wyn zar
""".split()  # noqa: SIM905

# Where a company is based: (weight, top-level domains, legal suffixes; "" is no suffix). Some
# suffixes here ("Pvt Ltd", "Ltda.", "S.A. de C.V.") are ones the matcher does not strip.
HOMES: tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...] = (
    (45, ("com",) * 8 + ("io", "co", "ai", "net"),
     ("Inc.", "Inc", "Inc", "LLC", "LLC", "Corp.", "Corporation", "Co.", "LLP", "", "", "")),
    (10, ("co.uk", "co.uk", "co.uk", "com", "com", "io", "uk"),
     ("Ltd", "Ltd.", "Limited", "plc", "LLP", "", "")),
    (8, ("de", "de", "de", "de", "com"), ("GmbH", "GmbH", "AG", "GmbH & Co. KG", "SE", "")),
    (5, ("fr", "fr", "fr", "com"), ("SAS", "SA", "S.A.", "SARL", "")),
    (4, ("nl", "be", "com"), ("B.V.", "BV", "N.V.", "")),
    (4, ("se", "no", "dk", "fi", "com"), ("AB", "AS", "A/S", "Oy", "")),
    (4, ("es", "it", "com"), ("S.L.", "S.A.", "S.p.A.", "S.r.l.", "")),
    (4, ("ca", "ca", "com"), ("Inc.", "Ltd.", "ULC", "")),
    (4, ("com.au", "com.au", "co.nz", "com"), ("Pty Ltd", "Pty. Ltd.", "Limited", "")),
    (3, ("co.jp", "jp", "com"), ("K.K.", "Co., Ltd.", "Inc.", "")),
    (3, ("in", "co.in", "com"), ("Pvt Ltd", "Private Limited", "Ltd", "")),
    (3, ("com.br", "com.mx", "com"), ("Ltda.", "S.A. de C.V.", "S.A.", "")),
    (1, ("sg", "com.sg"), ("Pte Ltd", "Pte. Ltd.", "")),
)  # fmt: skip
# Longest first, ties by name: a set's order differs between processes, and the leads built
# from this must be the same in every run.
ALL_SUFFIXES = sorted(
    {s for _, _, suffixes in HOMES for s in suffixes if s}, key=lambda s: (-len(s), s)
)

FREE_MAIL = (
    "gmail.com", "gmail.com", "gmail.com", "yahoo.com", "hotmail.com", "outlook.com",
    "icloud.com", "gmx.de", "web.de", "yahoo.co.jp", "qq.com", "proton.me", "orange.fr",
)  # fmt: skip

# (weight, country code or None, the ways people write it in a form)
COUNTRIES: tuple[tuple[int, str | None, tuple[str, ...]], ...] = (
    (34, "US", ("US", "USA", "United States", "United States of America", "U.S.", "us", "U.S.A.")),
    (5, "CA", ("Canada", "CA", "canada")),
    (7, "GB", ("United Kingdom", "UK", "GB", "England", "Great Britain", "Scotland")),
    (1, "IE", ("Ireland", "IE", "Republic of Ireland")),
    (5, "DE", ("Germany", "Deutschland", "DE", "germany")),
    (1, "AT", ("Austria", "Österreich", "AT")),
    (1, "CH", ("Switzerland", "Schweiz", "CH", "Suisse")),
    (4, "FR", ("France", "FR", "france")),
    (2, "NL", ("Netherlands", "The Netherlands", "NL", "Holland")),
    (1, "BE", ("Belgium", "Belgique", "BE")),
    (1, "SE", ("Sweden", "Sverige", "SE")),
    (1, "NO", ("Norway", "Norge")),
    (1, "DK", ("Denmark", "DK")),
    (1, "FI", ("Finland", "Suomi")),
    (2, "ES", ("Spain", "España", "ES")),
    (1, "IT", ("Italy", "Italia")),
    (1, "PT", ("Portugal", "PT")),
    (1, "AE", ("United Arab Emirates", "UAE", "AE")),
    (1, "IL", ("Israel", "IL")),
    (1, "ZA", ("South Africa", "ZA")),
    (1, "SA", ("Saudi Arabia",)),
    (1, "NG", ("Nigeria",)),
    (3, "JP", ("Japan", "JP", "Nippon")),
    (2, "AU", ("Australia", "AU")),
    (1, "NZ", ("New Zealand", "NZ")),
    (3, "IN", ("India", "IN")),
    (1, "SG", ("Singapore", "SG")),
    (1, "KR", ("South Korea", "Korea")),
    (1, "CN", ("China", "CN")),
    (3, "BR", ("Brazil", "Brasil", "BR")),
    (2, "MX", ("Mexico", "México", "MX")),
    (1, "AR", ("Argentina",)),
    (1, "CO", ("Colombia",)),
    (1, "CL", ("Chile",)),
    (1, "PL", ("Poland", "Polska")),
    (1, "CZ", ("Czech Republic", "Czechia", "Česko")),
    (5, None, ("", "N/A", "Earth", "Remote", "-")),
)
US_STATES = {
    "CA": 12, "TX": 9, "NY": 8, "FL": 6, "IL": 4, "WA": 4, "MA": 4, "GA": 3, "NC": 3, "NJ": 3,
    "PA": 3, "OH": 3, "CO": 3, "VA": 3, "AZ": 2, "MI": 2, "MN": 2, "OR": 2, "UT": 2, "TN": 2,
    "MD": 2, "NV": 1, "WI": 1, "MO": 1, "IN": 1,
}  # fmt: skip
CA_PROVINCES = {"ON": 5, "QC": 3, "BC": 3, "AB": 2}
INDUSTRIES = {
    "Software": 18, "Financial Services": 6, "Banking": 3, "Insurance": 3, "Fintech": 2,
    "Healthcare": 6, "Biotech": 2, "Pharma": 2, "Medical Devices": 1, "Manufacturing": 7,
    "Automotive": 2, "Industrial": 2, "Retail": 5, "E-commerce": 3, "Consumer Goods": 2,
    "Education": 4, "Government": 2, "Public Sector": 1, "Media": 3, "Telecommunications": 3,
    "Energy": 2, "Logistics": 3, "Hospitality": 2, "Real Estate": 2, "Legal": 1, "Nonprofit": 1,
    "Construction": 2,
}  # fmt: skip
SOURCES = {
    "demo_request": 20, "contact_sales": 10, "content_download": 20, "webinar": 12,
    "trial_signup": 12, "event": 6, "partner_referral": 5, "paid_search": 8, "organic": 7,
}  # fmt: skip
TITLES = {
    "CEO": 3, "Founder": 2, "Co-Founder & CTO": 2, "Chief Revenue Officer": 1, "CFO": 1,
    "VP Sales": 4, "VP of Marketing": 3, "Vice President, Operations": 2, "Head of IT": 3,
    "Head of Data": 2, "Director of Engineering": 4, "IT Director": 4, "Marketing Manager": 8,
    "Sales Manager": 6, "Procurement Manager": 3, "Product Manager": 5, "Software Engineer": 8,
    "Senior Data Engineer": 4, "Analyst": 6, "Consultant": 4, "Office Manager": 3,
    "Marketing Coordinator": 4, "Account Executive": 3, "Student": 1,
    "Intern": 1, "Teacher": 1, "Nurse": 1, "Owner": 3,
}  # fmt: skip
TIERS = {"Strategic": 3, "Enterprise": 12, "Growth": 30, "SMB": 35, None: 20}

# Regions of the world, by the time zones of the reps who cover them.
NA_EAST = ("America/New_York", "America/Toronto", "America/Detroit", "America/Chicago")
NA_WEST = ("America/Los_Angeles", "America/Denver", "America/Phoenix", "America/Vancouver")
NA_ALL = NA_EAST + NA_WEST
HOLIDAYS_OF_ZONE = {
    "America/New_York": ("US", "US-NY"), "America/Toronto": ("CA",), "America/Detroit": ("US",),
    "America/Chicago": ("US",), "America/Los_Angeles": ("US", "US-CA"), "America/Denver": ("US",),
    "America/Phoenix": ("US",), "America/Vancouver": ("CA",), "America/Sao_Paulo": ("BR",),
    "America/Mexico_City": ("MX",), "America/Bogota": ("CO",), "Europe/London": ("GB",),
    "Europe/Dublin": ("IE",), "Europe/Berlin": ("DE", "DE-BY"), "Europe/Zurich": ("CH",),
    "Europe/Vienna": ("AT",), "Europe/Paris": ("FR",), "Europe/Amsterdam": ("NL",),
    "Europe/Brussels": ("BE",), "Europe/Stockholm": ("SE",), "Europe/Oslo": ("NO",),
    "Europe/Copenhagen": ("DK",), "Europe/Helsinki": ("FI",), "Europe/Madrid": ("ES",),
    "Asia/Dubai": ("AE",), "Asia/Riyadh": ("SA",), "Asia/Jerusalem": ("IL",),
    "Africa/Johannesburg": ("ZA",), "Asia/Tokyo": ("JP",), "Asia/Singapore": ("SG",),
    "Australia/Sydney": ("AU",), "Australia/Melbourne": ("AU",), "Pacific/Auckland": ("NZ",),
    "Asia/Kolkata": ("IN",),
}  # fmt: skip
WEEKEND_FRI_SAT = frozenset({"Asia/Riyadh", "Asia/Jerusalem"})

# name, time zones of its reps, distribution, skills some of its reps have
TEAM_PLANS: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    ("na_strategic", NA_ALL, "weighted", ("enterprise",)),
    ("na_enterprise_east", NA_EAST, "weighted", ("enterprise", "healthcare")),
    ("na_enterprise_west", NA_WEST, "least_loaded", ("enterprise",)),
    ("na_midmarket", NA_ALL, "round_robin", ("partner",)),
    ("na_smb_east", NA_EAST, "round_robin", ("french",)),
    ("na_smb_west", NA_WEST, "round_robin", ()),
    ("na_inbound", NA_ALL, "least_loaded", ()),
    ("na_public_sector", NA_EAST, "round_robin", ("public_sector",)),
    ("healthcare", NA_ALL, "weighted", ("healthcare",)),
    ("fintech", ("America/New_York", "Europe/London"), "least_loaded", ("fintech",)),
    ("latam", ("America/Sao_Paulo", "America/Mexico_City", "America/Bogota"), "round_robin",
     ("spanish", "portuguese")),
    ("uk_ireland", ("Europe/London", "Europe/Dublin"), "round_robin", ()),
    ("dach", ("Europe/Berlin", "Europe/Zurich", "Europe/Vienna"), "weighted",
     ("german", "enterprise")),
    ("france_benelux", ("Europe/Paris", "Europe/Amsterdam", "Europe/Brussels"), "least_loaded",
     ("french",)),
    ("nordics", ("Europe/Stockholm", "Europe/Oslo", "Europe/Copenhagen", "Europe/Helsinki"),
     "round_robin", ()),
    ("emea_enterprise", ("Europe/London", "Europe/Berlin", "Europe/Madrid", "Europe/Paris"),
     "weighted", ("enterprise", "spanish", "healthcare")),
    ("mea", ("Asia/Dubai", "Asia/Riyadh", "Asia/Jerusalem", "Africa/Johannesburg"),
     "round_robin", ()),
    ("apac_enterprise", ("Asia/Singapore", "Australia/Sydney", "Asia/Tokyo"), "weighted",
     ("enterprise", "japanese")),
    ("japan", ("Asia/Tokyo",), "round_robin", ("japanese",)),
    ("anz_india", ("Australia/Sydney", "Australia/Melbourne", "Pacific/Auckland", "Asia/Kolkata"),
     "least_loaded", ()),
)  # fmt: skip
REPS_PER_TEAM = 25
HOURS = {
    "09:00-17:00": 10, "09:00-17:30": 8, "08:00-16:00": 5, "08:30-17:00": 5, "09:00-18:00": 5,
    "10:00-18:00": 4, "07:00-15:00": 2, "11:00-19:00": 2, "12:00-20:00": 1, "18:00-02:00": 1,
}  # fmt: skip
EXTRA_SKILLS = ("french", "spanish", "german", "healthcare", "fintech", "enterprise")

# Lead kinds, to see how each is matched and how long each takes.
DOMAIN, NAME, FREE, UNKNOWN = range(4)
KIND_NAMES = ("domain of an account", "account name, approximately", "free mail", "unknown company")

# A generated lead: its kind, the account it was made from (if any), and the lead as JSON.
GeneratedLead = tuple[int, Account | None, dict[str, Any]]


def _weighted(weights: dict[Any, int]) -> tuple[Any, ...]:
    """A tuple holding each key `weight` times: `_pick` on it is a weighted choice, and fast."""
    return tuple(key for key, weight in weights.items() for _ in range(weight))


def _pick(rng: random.Random, seq: Sequence[Any]) -> Any:
    return seq[int(rng.random() * len(seq))]


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c == "-")).lower()


HOME_CHOICES = _weighted({i: weight for i, (weight, _, _) in enumerate(HOMES)})
COUNTRY_CHOICES = _weighted({i: weight for i, (weight, _, _) in enumerate(COUNTRIES)})
STATE_CHOICES = _weighted(US_STATES)
PROVINCE_CHOICES = _weighted(CA_PROVINCES)
INDUSTRY_CHOICES = _weighted(INDUSTRIES)
SOURCE_CHOICES = _weighted(SOURCES)
TITLE_CHOICES = _weighted(TITLES)
TIER_CHOICES = _weighted(TIERS)
HOURS_CHOICES = _weighted(HOURS)
SLUG = {word: _ascii(word) for word in (*ADJECTIVES, *NOUNS, *SECTORS, *SURNAMES, *FIRST_NAMES)}


# ---------------------------------------------------------------------------------------------
# The policy


def make_policy_text(seed: int) -> str:
    """500 reps in 20 teams of 25, 3 qualify rules and 50 routing rules, as an admin's YAML."""
    rng = random.Random(f"{seed}:policy")
    reps: list[dict[str, Any]] = []
    teams: dict[str, dict[str, Any]] = {}
    managers: list[dict[str, Any]] = []
    used_ids: set[str] = set()
    for number, (team, zones, distribution, skills) in enumerate(TEAM_PLANS):
        members = []
        for position in range(REPS_PER_TEAM):
            rep = _rep(rng, zones, skills, used_ids, every_skill=position == 0)
            reps.append(rep)
            members.append(rep["id"])
        manager = f"mgr.{team}"
        managers.append(
            {
                "id": manager,
                "name": f"{_pick(rng, FIRST_NAMES)} {_pick(rng, SURNAMES)}",
                "slack": _slack_id(rng),
                "email": f"{manager}@example.com",
                "timezone": zones[0],
                "digest": "0 9 * * mon-fri" if number % 3 else "30 8 * * mon-fri",
            }
        )
        spec: dict[str, Any] = {
            "members": members,
            "distribution": distribution,
            "manager": manager,
        }
        if number % 4 == 0:
            spec["channel"] = f"C0{team.upper().replace('_', '')[:9]}"
        teams[team] = spec
    named_rep = teams["na_inbound"]["members"][3]
    policy = {
        "timezone": "America/New_York",
        "regions": {"DACH": ["DE", "AT", "CH"]},
        "segments": {"SMB": 0, "MidMarket": 200, "Enterprise": 1000, "Strategic": 10000},
        "reps": reps,
        "managers": managers,
        "teams": teams,
        "qualify": QUALIFY,
        "sla": {
            "default": "15m",
            "by_source": {
                "demo_request": "5m",
                "contact_sales": "10m",
                "content_download": "4h",
                "webinar": "1d",
                "event": "2d",
            },
            "max_reassignments": 2,
        },
        "accounts": {"fuzzy_threshold": 88, "sticky": True},
        "rules": _rules(named_rep),
        "fallback": {"queue": "unmatched", "channel": "C0TRIAGE"},
    }
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 100
    out = io.StringIO()
    yaml.dump(policy, out)
    return out.getvalue()


def _rep(
    rng: random.Random,
    zones: Sequence[str],
    team_skills: Sequence[str],
    used_ids: set[str],
    *,
    every_skill: bool,
) -> dict[str, Any]:
    first, last = _pick(rng, FIRST_NAMES), _pick(rng, SURNAMES)
    base = f"{SLUG[first]}.{SLUG[last].replace(' ', '')}"
    ident, n = base, 1
    while ident in used_ids:
        n += 1
        ident = f"{base}{n}"
    used_ids.add(ident)
    zone = _pick(rng, zones)
    rep: dict[str, Any] = {
        "id": ident,
        "name": f"{first} {last}",
        "slack": _slack_id(rng),
        "email": f"{ident}@example.com",
        "timezone": zone,
    }
    if rng.random() < 0.95:  # the rest are available around the clock
        rep["hours"] = _pick(rng, HOURS_CHOICES)
        if zone in WEEKEND_FRI_SAT:
            rep["days"] = "sun-thu"
        elif rng.random() < 0.05:
            rep["days"] = _pick(rng, ("mon-thu", "tue-sat", "mon,wed,fri"))
    r = rng.random()
    if r < 0.10:
        rep["capacity"] = rng.randint(30, 150)  # these will fill up during a run
    elif r < 0.95:
        rep["capacity"] = rng.randrange(1500, 5001, 100)
    rep["weight"] = _pick(rng, (1, 1, 1, 2, 2, 3, 4))
    skills = [s for s in team_skills if every_skill or rng.random() < 0.55]
    if rng.random() < 0.15:
        extra = _pick(rng, EXTRA_SKILLS)
        if extra not in skills:
            skills.append(extra)
    if skills:
        rep["skills"] = skills
    if rng.random() < 0.12:
        rep["holidays"] = _pick(rng, HOLIDAYS_OF_ZONE[zone])
    return rep


def _slack_id(rng: random.Random) -> str:
    return "U0" + "".join(_pick(rng, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(9))


QUALIFY: list[dict[str, Any]] = [
    {
        "name": "Tests, students and job seekers",
        "when": {
            "any": [
                {"fields.is_test": True},
                {"title": {"contains": "student"}},
                {"title": {"matches": r"\b(intern|job seeker)\b"}},
                {"email_disposable": True},
            ]
        },
        "outcome": "disqualified",
    },
    {
        "name": "Free e-mail, not asking for sales",
        "when": {
            "all": [
                {"email_domain_type": "free"},
                {"not": {"source": {"in": ["demo_request", "contact_sales"]}}},
            ]
        },
        "outcome": "nurture",
    },
    {
        "name": "Tiny content downloaders",
        "when": {"source": "content_download", "employees": {"lt": 10}},
        "outcome": "nurture",
    },
]

HEALTH = ["Healthcare", "Biotech", "Pharma", "Medical Devices"]
FINANCE = ["Financial Services", "Banking", "Insurance", "Fintech"]
PUBLIC = ["Government", "Public Sector", "Education"]
WEST = ["CA", "WA", "OR", "NV", "AZ", "CO", "UT", "ID"]
BIG = {"in": ["Enterprise", "Strategic"]}


def _team(name: str, skill: str | None = None) -> dict[str, str]:
    return {"team": name, "skill": skill} if skill else {"team": name}


def _rule(
    name: str,
    when: dict[str, Any] | None,
    assign: Any,
    fallback: Any = None,
    sla: str | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": name}
    if when is not None:
        rule["when"] = when
    rule["assign"] = assign
    if fallback is not None:
        rule["fallback"] = fallback
    if sla is not None:
        rule["sla"] = sla
    return rule


def _rules(named_rep: str) -> list[dict[str, Any]]:
    executive = [
        {"title": {"contains": word}}
        for word in ("chief", "vp", "vice president", "founder", "head of")
    ]
    mea = ["AE", "SA", "IL", "QA", "KW", "BH", "OM"]
    africa = ["ZA", "NG", "KE", "EG", "MA", "GH"]
    rules = [
        _rule(
            "Strategic accounts",
            {"all": [{"account.tier": "Strategic"}, {"account.owner": {"exists": True}}]},
            "account_owner",
            _team("na_strategic"),
            sla="5m",
        ),
        _rule("Named partner", {"fields.partner_id": "P-ACME"}, {"rep": named_rep}),
        _rule(
            "Partner referrals",
            {"all": [{"source": "partner_referral"}, {"fields.partner_id": {"exists": True}}]},
            _team("na_midmarket", "partner"),
            _team("na_midmarket"),
        ),
        _rule(
            "Owned key accounts",
            {"account.owner": {"exists": True}, "account.tier": {"in": ["Enterprise", "Growth"]}},
            "account_owner",
            {"queue": "owner_unavailable", "channel": "C0OWNERQ"},
        ),
        _rule("Owned accounts", {"account.owner": {"exists": True}}, "account_owner"),
        _rule(
            "Known big accounts without an owner",
            {"all": [{"account.matched": True}, {"account.tier": BIG}]},
            _team("na_strategic"),
            "queue",
        ),
        _rule("Event badge scans", {"source": "event"}, {"queue": "events", "channel": "C0EVENTS"}),
        _rule("Small webinar attendees", {"source": "webinar", "segment": "SMB"}, "queue"),
        _rule(
            "US public sector",
            {"country": "US", "industry": PUBLIC},
            _team("na_public_sector", "public_sector"),
            _team("na_public_sector"),
        ),
        _rule(
            "NA healthcare enterprise",
            {"all": [{"region": "NA"}, {"industry": HEALTH}, {"segment": BIG}]},
            _team("healthcare", "healthcare"),
            _team("na_enterprise_east", "healthcare"),
        ),
        _rule("NA healthcare", {"region": "NA", "industry": HEALTH}, _team("healthcare")),
        _rule(
            "NA financial services",
            {"region": "NA", "industry": FINANCE},
            _team("fintech", "fintech"),
            _team("fintech"),
        ),
        _rule(
            "NA strategic",
            {"region": "NA", "segment": "Strategic"},
            _team("na_strategic"),
            sla="5m",
        ),
        _rule(
            "NA enterprise west",
            {"all": [{"region": "NA"}, {"segment": "Enterprise"}, {"state": {"in": WEST}}]},
            _team("na_enterprise_west"),
        ),
        _rule(
            "NA enterprise",
            {"region": "NA", "segment": "Enterprise"},
            _team("na_enterprise_east", "enterprise"),
            _team("na_enterprise_east"),
        ),
        _rule(
            "NA mid-market demo requests",
            {"region": "NA", "source": "demo_request", "employees": {"gte": 200, "lt": 1000}},
            _team("na_inbound"),
            sla="5m",
        ),
        _rule(
            "NA executives",
            {"all": [{"region": "NA"}, {"employees": {"gte": 50}}, {"any": executive}]},
            _team("na_midmarket"),
        ),
        _rule(
            "NA enterprise plan interest",
            {"region": "NA", "fields.plan_interest": "enterprise"},
            _team("na_enterprise_east", "enterprise"),
            _team("na_midmarket"),
        ),
        _rule("NA mid-market", {"region": "NA", "segment": "MidMarket"}, _team("na_midmarket")),
        _rule(
            "Quebec",
            {"country": "CA", "state": {"in": ["QC"]}},
            _team("na_smb_east", "french"),
            _team("na_smb_east"),
        ),
        _rule(
            "NA SMB west",
            {"region": "NA", "segment": "SMB", "state": {"in": WEST}},
            _team("na_smb_west"),
        ),
        _rule("NA trials", {"region": "NA", "source": "trial_signup"}, _team("na_inbound")),
        _rule("NA SMB", {"region": "NA", "segment": "SMB"}, _team("na_smb_east")),
        _rule(
            "NA, size unknown",
            {"region": "NA", "employees": {"exists": False}},
            _team("na_inbound"),
        ),
        _rule(
            "Brazil and Portugal",
            {"country": {"in": ["BR", "PT"]}},
            _team("latam", "portuguese"),
            _team("latam"),
        ),
        _rule("LATAM", {"region": "LATAM"}, _team("latam", "spanish"), _team("latam")),
        _rule(
            "DACH enterprise",
            {"region": "DACH", "segment": BIG},
            _team("dach", "enterprise"),
            _team("dach"),
        ),
        _rule("DACH", {"region": "DACH"}, _team("dach", "german"), _team("emea_enterprise")),
        _rule(
            "UK and Ireland enterprise",
            {"country": {"in": ["GB", "IE"]}, "segment": BIG},
            _team("emea_enterprise", "enterprise"),
            _team("emea_enterprise"),
        ),
        _rule("UK and Ireland", {"country": {"in": ["GB", "IE"]}}, _team("uk_ireland")),
        _rule(
            "France, Belgium, Luxembourg",
            {"country": {"in": ["FR", "BE", "LU", "MC"]}},
            _team("france_benelux", "french"),
            _team("france_benelux"),
        ),
        _rule("Netherlands", {"country": "NL"}, _team("france_benelux")),
        _rule("Nordics", {"country": {"in": ["SE", "NO", "DK", "FI", "IS"]}}, _team("nordics")),
        _rule(
            "Southern Europe",
            {"country": {"in": ["ES", "IT", "PT", "GR", "MT"]}},
            _team("emea_enterprise", "spanish"),
            {"queue": "emea_unassigned"},
        ),
        _rule(
            "Middle East and Africa",
            {
                "any": [
                    {"country": {"in": mea}},
                    {"all": [{"region": "EMEA"}, {"country": {"in": africa}}]},
                ]
            },
            _team("mea"),
        ),
        _rule(
            "EMEA healthcare",
            {"region": "EMEA", "industry": HEALTH},
            _team("emea_enterprise", "healthcare"),
            _team("emea_enterprise"),
        ),
        _rule("EMEA enterprise", {"region": "EMEA", "segment": BIG}, _team("emea_enterprise")),
        _rule(
            "Rest of EMEA", {"region": "EMEA"}, _team("uk_ireland"), {"queue": "emea_unassigned"}
        ),
        _rule(
            "Japan",
            {"country": "JP"},
            _team("japan", "japanese"),
            _team("apac_enterprise", "japanese"),
        ),
        _rule("APAC enterprise", {"region": "APAC", "segment": BIG}, _team("apac_enterprise")),
        _rule("Australia and New Zealand", {"country": {"in": ["AU", "NZ"]}}, _team("anz_india")),
        _rule("India", {"country": "IN"}, _team("anz_india")),
        _rule("Rest of APAC", {"region": "APAC"}, _team("apac_enterprise"), _team("anz_india")),
        _rule(
            "Hot leads from nowhere",
            {"all": [{"region": {"exists": False}}, {"score": {"gte": 80}}]},
            _team("na_inbound"),
        ),
        _rule("Score band A", {"fields.lead_score_band": "A"}, _team("na_midmarket")),
        _rule("Large companies", {"employees": {"gte": 1000}}, _team("na_enterprise_east")),
        _rule(
            "Industrial",
            {"industry": ["Manufacturing", "Automotive", "Industrial", "Construction"]},
            _team("na_midmarket"),
        ),
        _rule(
            "Retail and consumer",
            {"industry": ["Retail", "E-commerce", "Consumer Goods"]},
            _team("na_smb_east"),
        ),
        _rule(
            "Self-serve sign-ups",
            {
                "all": [
                    {"source": {"in": ["trial_signup", "organic"]}},
                    {"not": {"title": {"contains": "manager"}}},
                ]
            },
            {"queue": "self_serve"},
        ),
        _rule("Everyone else", None, _team("na_inbound"), "queue"),
    ]
    assert len(rules) == 50, len(rules)
    return rules


def out_of_office(policy: Policy, seed: int, now: datetime) -> dict[str, OutOfOffice]:
    """A few reps away, as on any given day: 15 until a date, 3 until further notice."""
    rng = random.Random(f"{seed}:away")
    away = rng.sample(sorted(policy.reps), 18)
    reasons = ("vacation", "conference", "sick", None)
    result = {
        rep: OutOfOffice(until=now + timedelta(days=rng.randint(1, 10)), reason=_pick(rng, reasons))
        for rep in away[:15]
    }
    result.update({rep: OutOfOffice(reason="parental leave") for rep in away[15:]})
    return result


# ---------------------------------------------------------------------------------------------
# Accounts and leads


def _coined(rng: random.Random) -> str:
    r = rng.random()
    count = 2 if r < 0.2 else 3 if r < 0.8 else 4
    return "".join(_pick(rng, SYLLABLES) for _ in range(count)).capitalize()


def _company(rng: random.Random) -> tuple[tuple[str, ...], int]:
    """The words of a company's name (no legal suffix yet) and where it is based."""
    r = rng.random()
    words: tuple[str, ...]
    if r < 0.35:
        words = (_coined(rng), _pick(rng, SECTORS))
    elif r < 0.50:
        words = (_coined(rng),)
    elif r < 0.60:
        words = (_coined(rng), _pick(rng, NOUNS))
    elif r < 0.85:
        words = (_pick(rng, ADJECTIVES), _pick(rng, NOUNS), _pick(rng, SECTORS))
    elif r < 0.90:
        words = (_pick(rng, SURNAMES), _pick(rng, SECTORS))
    elif r < 0.93:
        words = (_pick(rng, SURNAMES), "&", _pick(rng, SURNAMES))
    elif r < 0.96:
        words = (_pick(rng, ADJECTIVES), _pick(rng, NOUNS))
    elif r < 0.98:
        words = (_pick(rng, ADJECTIVES if rng.random() < 0.5 else NOUNS), _pick(rng, SECTORS))
    else:
        words = ("The", _pick(rng, ADJECTIVES), _pick(rng, NOUNS), "Company")
    return words, _pick(rng, HOME_CHOICES)


def _full_name(rng: random.Random, words: Sequence[str], home: int) -> str:
    suffix = _pick(rng, HOMES[home][2])
    return " ".join(words) + (f" {suffix}" if suffix else "")


def _domain(
    rng: random.Random, words: Sequence[str], home: int, taken: Callable[[str], bool]
) -> str:
    """A domain for a company, made from its name, that `taken` says is free."""
    slugs = [
        s for w in words if w not in ("&", "The", "Company") if (s := SLUG.get(w) or _ascii(w))
    ]
    slugs = slugs or ["company"]
    r = rng.random()
    if r < 0.55 or len(slugs) == 1:
        stem = "".join(slugs)
    elif r < 0.75:
        stem = "-".join(slugs)
    else:
        stem = slugs[0] if len(slugs[0]) >= 5 else "".join(slugs)
    tld = _pick(rng, HOMES[home][1])
    for candidate in (stem, f"{stem}hq", f"get{stem}", f"{stem}group"):
        domain = f"{candidate}.{tld}"
        if not taken(domain):
            return domain
    number = 2
    while taken(domain := f"{stem}{number}.{tld}"):
        number += rng.randint(1, 9)
    return domain


def make_accounts(seed: int, count: int, rep_ids: Sequence[str]) -> list[Account]:
    """`count` accounts: 92% with a domain (unique), 64% with an owner, 1% owned by former reps."""
    rng = random.Random(f"{seed}:accounts")
    seen: set[str] = set()

    def taken(domain: str) -> bool:
        if domain in seen:
            return True
        seen.add(domain)
        return False

    accounts = []
    for number in range(count):
        words, home = _company(rng)
        name = _full_name(rng, words, home)
        domain = None if rng.random() < 0.08 else _domain(rng, words, home, taken)
        r = rng.random()
        if r < 0.35:
            owner = None
        elif r < 0.36:
            owner = f"former.rep{int(r * 10_000) % 40}"
        else:
            owner = _pick(rng, rep_ids)
        tier = _pick(rng, TIER_CHOICES)
        accounts.append(Account(f"acc{number:07d}", name, domain, owner, tier))
    return accounts


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word) - 1)
    op = rng.random()
    if op < 0.3:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swapped
    if op < 0.55:
        return word[:i] + word[i + 1 :]  # dropped
    if op < 0.8:
        return word[:i] + _pick(rng, "aeiourstnl") + word[i + 1 :]  # replaced
    return word[:i] + word[i] + word[i:]  # doubled


def _variant(rng: random.Random, name: str) -> str:
    """The name as a person might type it: a typo, another legal suffix, other case or "&"."""
    r = rng.random()
    if r < 0.4:
        words = name.split()
        long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if long:
            i = _pick(rng, long)
            words[i] = _typo(rng, words[i])
        name = " ".join(words)
    elif r < 0.75:
        for suffix in ALL_SUFFIXES:
            if name.endswith(f" {suffix}"):
                name = name[: -len(suffix) - 1]
                break
        other = _pick(rng, (*ALL_SUFFIXES, "", ""))
        name = f"{name}, {other}" if other and rng.random() < 0.2 else f"{name} {other}".strip()
    elif r < 0.85:
        name = name.replace(" & ", " and ") if "&" in name else f"The {name}"
    if rng.random() < 0.4:
        name = name.upper() if rng.random() < 0.5 else name.lower()
    return name


def iter_leads(
    seed: int | str, accounts: Sequence[Account], index: AccountIndex
) -> Iterator[GeneratedLead]:
    """Generated leads, forever; the same sequence for the same seed.

    30% carry the domain of an account (in the e-mail, a subdomain or the website), 15% the name
    of an account approximately, 5% a free-mail address, the rest unknown companies. A domain
    invented for an unknown company is checked against the index, so it never matches by chance.
    """
    rng = random.Random(f"{seed}:leads")
    with_domain = [a for a in accounts if a.domain]

    def taken(domain: str) -> bool:
        return index.match(domain=domain, company=None, threshold=100) is not None

    number = 0
    while True:
        first, last = _pick(rng, FIRST_NAMES), _pick(rng, SURNAMES)
        local = _pick(
            rng,
            (f"{SLUG[first]}.{SLUG[last]}", f"{SLUG[first][0]}{SLUG[last]}", SLUG[first]),
        ).replace(" ", "")
        lead: dict[str, Any] = {
            "id": f"lead-{number:07d}",
            "first_name": first,
            "last_name": last,
        }
        r = rng.random()
        if r < 0.30:
            kind = DOMAIN
            account = source = _pick(rng, with_domain)
            assert account.domain is not None
            how = rng.random()
            if how < 0.85:
                lead["email"] = f"{local}@{account.domain}"
            elif how < 0.95:
                lead["email"] = f"{local}@{_pick(rng, ('eu', 'us', 'mail', 'uk'))}.{account.domain}"
            else:
                lead["website"] = f"https://www.{account.domain}/contact"
            company = rng.random()
            if company < 0.70:
                lead["company"] = account.name
            elif company < 0.85:
                lead["company"] = _variant(rng, account.name)
        elif r < 0.45:
            kind = NAME
            source = _pick(rng, accounts)
            lead["company"] = _variant(rng, source.name)
            words = lead["company"].split()[:2]
            lead["email"] = f"{local}@{_domain(rng, words, _pick(rng, HOME_CHOICES), taken)}"
        elif r < 0.50:
            kind = FREE
            if rng.random() < 0.4:
                source = _pick(rng, accounts)
                lead["company"] = _variant(rng, source.name)
            else:
                source = None
                words, home = _company(rng)
                lead["company"] = _full_name(rng, words, home)
            lead["email"] = f"{local}{rng.randint(1, 99)}@{_pick(rng, FREE_MAIL)}"
        else:
            kind, source = UNKNOWN, None
            words, home = _company(rng)
            lead["company"] = _full_name(rng, words, home)
            if rng.random() < 0.97:
                lead["email"] = f"{local}@{_domain(rng, words, home, taken)}"
        _describe_person(rng, lead)
        number += 1
        yield kind, source, lead


def _describe_person(rng: random.Random, lead: dict[str, Any]) -> None:
    """Country, size, industry, source, title and custom fields, with the gaps real forms have."""
    _, code, spellings = COUNTRIES[_pick(rng, COUNTRY_CHOICES)]
    if rng.random() < 0.97:
        lead["country"] = _pick(rng, spellings)
    if code == "US" and rng.random() < 0.85:
        lead["state"] = _pick(rng, STATE_CHOICES)
    elif code == "CA" and rng.random() < 0.7:
        lead["state"] = _pick(rng, PROVINCE_CHOICES)
    size = rng.random()
    if size < 0.10:
        employees = None
    elif size < 0.55:
        employees = rng.randint(1, 199)
    elif size < 0.83:
        employees = rng.randint(200, 999)
    elif size < 0.97:
        employees = rng.randint(1000, 9999)
    else:
        employees = rng.randint(10_000, 250_000)
    if employees is not None:
        lead["employees"] = f"{employees:,}" if rng.random() < 0.1 else employees
    if rng.random() < 0.85:
        lead["industry"] = _pick(rng, INDUSTRY_CHOICES)
    source = _pick(rng, SOURCE_CHOICES)
    lead["source"] = source
    lead["title"] = _pick(rng, TITLE_CHOICES)
    if rng.random() < 0.6:
        lead["score"] = round(rng.uniform(0, 100), 1)
    if rng.random() < 0.5:
        lead["phone"] = f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    custom: dict[str, Any] = {}
    if rng.random() < 0.3:
        custom["plan_interest"] = _pick(rng, ("starter", "pro", "pro", "enterprise"))
    if rng.random() < 0.4:
        custom["lead_score_band"] = _pick(rng, "ABCD")
    if source == "partner_referral" and rng.random() < 0.8:
        custom["partner_id"] = "P-ACME" if rng.random() < 0.1 else f"P-{rng.randint(100, 999)}"
    if rng.random() < 0.003:
        custom["is_test"] = True
    if rng.random() < 0.3:
        custom["utm_campaign"] = _pick(rng, ("q2-launch", "brand", "retargeting", "partner-week"))
    if rng.random() < 0.5:
        lead.update({f"fields.{key}": value for key, value in custom.items()})
    elif custom:
        lead["fields"] = custom


# ---------------------------------------------------------------------------------------------
# Measuring


def routing_core() -> str:
    """Whether the routing core runs compiled (`make native`) or as plain Python: the figures
    differ by about 1.5 times."""
    compiled = compiled_modules()
    if compiled:
        return f"compiled with mypyc ({len(compiled)} modules)"
    return "plain Python (`make native` compiles it)"


def _rss_mb() -> float | None:
    """Resident set size now, from /proc (Linux); None elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS


def _percentile(ordered: Sequence[int], p: float) -> float:
    """Nearest-rank percentile of nanoseconds, in microseconds."""
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return round(ordered[rank - 1] / 1000, 1)


def _latency(times: Sequence[int]) -> dict[str, float]:
    ordered = sorted(times)
    if not ordered:
        return {}
    return {
        "p50_us": _percentile(ordered, 50),
        "p95_us": _percentile(ordered, 95),
        "p99_us": _percentile(ordered, 99),
        "max_us": round(ordered[-1] / 1000, 1),
        "mean_us": round(sum(ordered) / len(ordered) / 1000, 1),
    }


def _clear_lead_caches(index: AccountIndex | None = None) -> None:
    """Empty the caches keyed on lead values, so that every run starts equally cold.

    Without this the second run would find the first one's domains and company names already
    looked up, and the first would find account domains left there by building the index.
    """
    if index is not None:
        index.forget_leads()
    for cached in (registrable_domain, company_key, email_domain_type, is_disposable):
        clear = getattr(cached, "cache_clear", None)
        if clear is not None:
            clear()


class _GcWatch:
    """Counts garbage collections by generation and the longest pause, during a run."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.longest_ns = 0
        self.total_ns = 0
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
            return
        pause = time.perf_counter_ns() - self._started
        self.counts[info["generation"]] += 1
        self.total_ns += pause
        self.longest_ns = max(self.longest_ns, pause)

    def report(self) -> dict[str, Any]:
        return {
            "collections": self.counts,
            "longest_pause_us": round(self.longest_ns / 1000, 1),
            "total_ms": round(self.total_ns / 1e6, 1),
        }


def run_leads(
    *,
    policy: Policy,
    index: AccountIndex,
    leads: Iterator[GeneratedLead],
    count: int,
    start: datetime,
    step: timedelta,
    away: dict[str, OutOfOffice],
) -> dict[str, Any]:
    """Route `count` leads one by one, timing each `route()`, carrying the state along."""
    _clear_lead_caches(index)
    sim = Simulation(policy=policy, now=start, accounts=index, out_of_office=away)
    # Simulation.apply updates these containers in place, so one RoutingState sees every change.
    state = RoutingState(sim.loads, sim.out_of_office, sim.teams, sim.account_reps)
    times = array("q")
    kinds = bytearray()
    outcomes: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    matched_by_kind: Counter[tuple[int, str]] = Counter()
    name_matched_source: Counter[int] = Counter()
    rules: Counter[str] = Counter()
    fallbacks = 0
    sticky = 0
    steps = 0
    loop_ns = 0
    decide_ns = 0
    cpu_ns = 0
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    gc_watch = _GcWatch()
    gc.callbacks.append(gc_watch)
    try:
        done = 0
        while done < count:
            chunk = list(islice(leads, min(CHUNK, count - done)))
            parsed: list[tuple[int, Account | None, Lead, datetime]] = [
                (kind, source, parse_lead(raw), start + step * (done + i))
                for i, (kind, source, raw) in enumerate(chunk)
            ]
            began, began_cpu = time.perf_counter_ns(), time.thread_time_ns()
            for kind, source, lead, now in parsed:
                t0 = time.perf_counter_ns()
                decision = route(lead, policy=policy, now=now, accounts=index, state=state)
                t1 = time.perf_counter_ns()
                sim.apply(decision)
                sim.decisions.pop()  # keep the bookkeeping, not a list of 100k decisions
                # Deciding and carrying the state along, as a live router does; the figures
                # gathered below are the benchmark's own and are not counted.
                decide_ns += time.perf_counter_ns() - t0
                times.append(t1 - t0)
                kinds.append(kind)
                outcomes[decision.outcome.value] += 1
                if decision.account is not None:
                    matched[decision.account.method] += 1
                    matched_by_kind[kind, decision.account.method] += 1
                    if decision.account.method == "name" and _same_company(
                        decision.account.account, source
                    ):
                        name_matched_source[kind] += 1
                rules[decision.rule or "(policy fallback)"] += 1
                fallbacks += decision.fallback_used
                sticky += decision.method == "sticky"
                steps += len(decision.trace)
            loop_ns += time.perf_counter_ns() - began
            cpu_ns += time.thread_time_ns() - began_cpu
            done += len(parsed)
    finally:
        gc.callbacks.remove(gc_watch)
    route_ns = sum(times)
    by_kind = {}
    for kind, label in enumerate(KIND_NAMES):
        of_kind = [t for t, k in zip(times, kinds, strict=True) if k == kind]
        by_kind[label] = {
            "leads": len(of_kind),
            "matched_by_domain": matched_by_kind[kind, "domain"],
            "matched_by_name": matched_by_kind[kind, "name"],
            "matched_by_name_to_its_account": name_matched_source[kind],
            **_latency(of_kind),
        }
    slowest = sorted(range(len(times)), key=times.__getitem__, reverse=True)[:5]
    return {
        "leads": len(times),
        "start": start.isoformat(),
        "step_ms": step / timedelta(milliseconds=1),
        "decisions_per_s": round(len(times) * 1e9 / decide_ns),
        "route_only_decisions_per_s": round(len(times) * 1e9 / route_ns),
        # The share of the wall-clock time this process had a core: below ~0.95, other work on
        # the machine took turns with it and the wall-clock figures above are pessimistic.
        "cpu_share": round(cpu_ns / loop_ns, 3),
        "decisions_per_cpu_s": round(len(times) * 1e9 / cpu_ns),
        "load_average": [load_before, os.getloadavg()[0] if load_before is not None else None],
        **_latency(times),
        "outcomes": {o.value: outcomes[o.value] for o in Outcome},
        "fallback_used": fallbacks,
        "sticky": sticky,
        "mean_trace_steps": round(steps / len(times), 1),
        "rules": dict(rules.most_common()),
        "matched_by_domain": matched["domain"],
        "matched_by_name": matched["name"],
        "by_kind": by_kind,
        "slowest": [
            {"lead": f"lead-{i:07d}", "us": round(times[i] / 1000, 1), "kind": KIND_NAMES[kinds[i]]}
            for i in slowest
        ],
        "gc": gc_watch.report(),
    }


# The matcher's own normalisation, without its cache: the bench must not warm the router's caches.
_company_key = getattr(company_key, "__wrapped__", company_key)


def _same_company(matched: Account, source: Account | None) -> bool:
    """Whether a lead matched the account it was made from, or one with the very same name."""
    if source is None:
        return False
    return matched.id == source.id or _company_key(matched.name) == _company_key(source.name)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _pin_to_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def _setup(
    seed: int, n_accounts: int
) -> tuple[Policy, list[Account], AccountIndex, dict[str, Any]]:
    info: dict[str, Any] = {"rss_mb": {"start": _rss_mb()}}
    started = time.perf_counter()
    text = make_policy_text(seed)
    policy = parse_policy(text, source="bench-policy.yml")
    info["policy"] = {
        "reps": len(policy.reps),
        "teams": len(policy.teams),
        "rules": len(policy.rules),
        "qualify": len(policy.qualify),
        "yaml_lines": text.count("\n"),
        "warnings": [w.format("bench-policy.yml") for w in policy.warnings],
        "parse_s": round(time.perf_counter() - started, 2),
    }
    _log(f"policy: {text.count(chr(10)):,} lines of YAML parsed")
    started = time.perf_counter()
    accounts = make_accounts(seed, n_accounts, sorted(policy.reps))
    info["generate_accounts_s"] = round(time.perf_counter() - started, 2)
    info["rss_mb"]["after_accounts"] = _rss_mb()
    _log(f"{n_accounts:,} accounts generated in {info['generate_accounts_s']} s")
    gc.collect()
    started = time.perf_counter()
    index = AccountIndex(accounts)
    info["build_s"] = round(time.perf_counter() - started, 2)
    gc.collect()
    # What a long-running leadrouter process does once its policy and accounts are loaded: move
    # them out of the collector's sight, so a full collection does not walk 100k accounts.
    gc.freeze()
    info["rss_mb"]["after_build"] = _rss_mb()
    info["rss_mb"]["peak_after_build"] = _peak_rss_mb()
    _log(f"index built in {info['build_s']} s")
    return policy, accounts, index, info


def _warm_up(policy: Policy, accounts: Sequence[Account], index: AccountIndex, seed: int) -> None:
    """Route a few other leads with a throwaway state: loads country tables, holiday calendars."""
    state = RoutingState()
    for _, _, raw in islice(iter_leads(f"{seed}:warm-up", accounts, index), WARM_UP_LEADS):
        route(parse_lead(raw), policy=policy, now=START, accounts=index, state=state)


def measure(n_accounts: int, n_leads: int, seed: int) -> dict[str, Any]:
    """Everything for one number of accounts, in this process."""
    core = _pin_to_one_core()
    policy, accounts, index, result = _setup(seed, n_accounts)
    result.update({"accounts": n_accounts, "leads": n_leads, "seed": seed, "core": core})
    _warm_up(policy, accounts, index, seed)
    away = out_of_office(policy, seed, START)
    result["out_of_office"] = len(away)
    runs = {}
    for name, step in (("fixed_now", timedelta(0)), ("live_clock", LIVE_STEP)):
        _log(f"routing {n_leads:,} leads, {name.replace('_', ' ')}")
        runs[name] = run_leads(
            policy=policy,
            index=index,
            leads=iter_leads(seed, accounts, index),
            count=n_leads,
            start=START,
            step=step,
            away=away,
        )
        _log(f"  {runs[name]['decisions_per_s']:,} decisions/s, p99 {runs[name]['p99_us']} µs")
    result["runs"] = runs
    result["rss_mb"]["end"] = _rss_mb()
    result["rss_mb"]["peak"] = _peak_rss_mb()
    return result


def profile(n_accounts: int, n_leads: int, seed: int, top: int = 15) -> str:
    """cProfile over routing `n_leads` leads (generation and parsing not included)."""
    _pin_to_one_core()
    policy, accounts, index, _ = _setup(seed, n_accounts)
    _warm_up(policy, accounts, index, seed)
    generated = islice(iter_leads(seed, accounts, index), n_leads)
    leads = [parse_lead(raw) for _, _, raw in generated]
    away = out_of_office(policy, seed, START)
    _clear_lead_caches(index)
    sim = Simulation(policy=policy, now=START, accounts=index, out_of_office=away)
    state = RoutingState(sim.loads, sim.out_of_office, sim.teams, sim.account_reps)

    def run() -> None:
        for lead in leads:
            decision: Decision = route(lead, policy=policy, now=START, accounts=index, state=state)
            sim.apply(decision)
            sim.decisions.pop()

    profiler = cProfile.Profile()
    profiler.runcall(run)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write(f"# {n_leads:,} leads, {n_accounts:,} accounts: top {top} by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(top)
    out.write(f"# top {top} by own time\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Reporting


def describe(result: dict[str, Any]) -> str:
    rss = result["rss_mb"]
    policy = result["policy"]
    lines = [
        f"## {result['accounts']:,} accounts, {result['leads']:,} leads (seed {result['seed']})",
        f"policy: {policy['reps']} reps, {policy['teams']} teams, {policy['rules']} rules, "
        f"{policy['qualify']} qualify rules; {policy['yaml_lines']:,} lines of YAML parsed in "
        f"{policy['parse_s']} s; {len(policy['warnings'])} warnings; "
        f"{result['out_of_office']} reps out of office",
        f"accounts generated in {result['generate_accounts_s']} s, index built in "
        f"{result['build_s']} s",
        f"RSS: {rss['start']} MB at start, {rss['after_accounts']} MB with the accounts, "
        f"{rss['after_build']} MB with the index, {rss['end']} MB at the end; "
        f"peak {rss['peak']} MB ({rss['peak_after_build']} MB by the end of the build)",
    ]
    for name, run in result["runs"].items():
        outcomes = " · ".join(f"{k} {v:,}" for k, v in run["outcomes"].items())
        clock = "fixed now" if name == "fixed_now" else f"now + {run['step_ms']:g} ms per lead"
        lines += [
            f"### {clock} (from {run['start']})",
            f"{run['decisions_per_s']:,} decisions/s ({run['route_only_decisions_per_s']:,}/s "
            f"counting route() alone) · p50 {run['p50_us']} µs · p95 {run['p95_us']} µs · "
            f"p99 {run['p99_us']} µs · max {run['max_us']} µs · mean {run['mean_us']} µs",
            f"CPU share {run['cpu_share']} (load average {run['load_average'][0]}); "
            f"{run['decisions_per_cpu_s']:,} decisions per CPU second",
            f"outcomes: {outcomes} · fallback used {run['fallback_used']:,} · "
            f"sticky {run['sticky']:,} · {run['mean_trace_steps']} trace steps per decision",
            "most used: "
            + ", ".join(f"{rule} {count:,}" for rule, count in list(run["rules"].items())[:8]),
            f"accounts matched: by domain {run['matched_by_domain']:,}, "
            f"by name {run['matched_by_name']:,}",
        ]
        for label, kind in run["by_kind"].items():
            lines.append(
                f"  {label}: {kind['leads']:,} leads, matched by domain "
                f"{kind['matched_by_domain']:,} / by name {kind['matched_by_name']:,} "
                f"({kind['matched_by_name_to_its_account']:,} to the account it came from); "
                f"p50 {kind.get('p50_us')} µs, p99 {kind.get('p99_us')} µs, "
                f"max {kind.get('max_us')} µs"
            )
        slow = ", ".join(f"{s['lead']} {s['us']} µs ({s['kind']})" for s in run["slowest"])
        gc_info = run["gc"]
        lines += [
            f"slowest: {slow}",
            f"gc during the run: {gc_info['collections']} collections (gen 0/1/2), "
            f"longest pause {gc_info['longest_pause_us']} µs, {gc_info['total_ms']} ms in all",
        ]
    return "\n".join(lines)


def table(results: Sequence[dict[str, Any]], run: str) -> str:
    rows = [
        "| accounts | build s | decisions/s | p50 µs | p99 µs | peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        r = result["runs"][run]
        rows.append(
            f"| {result['accounts']:,} | {result['build_s']} | {r['decisions_per_s']:,} | "
            f"{r['p50_us']} | {r['p99_us']} | {result['rss_mb']['peak']} |"
        )
    return "\n".join(rows)


def verdict(result: dict[str, Any]) -> list[str]:
    """The issue's targets, checked on one size's runs."""
    lines = []
    for name, run in result["runs"].items():
        rate_ok = run["decisions_per_s"] >= TARGET_RATE
        p99_ok = run["p99_us"] <= TARGET_P99_US
        lines.append(
            f"{name}: {run['decisions_per_s']:,} decisions/s "
            f"{'meets' if rate_ok else 'MISSES'} >= {TARGET_RATE:,}; p99 {run['p99_us']} µs "
            f"{'meets' if p99_ok else 'MISSES'} <= {TARGET_P99_US:,} µs"
        )
    peak = result["rss_mb"]["peak"]
    lines.append(
        f"peak RSS {peak} MB {'meets' if peak <= TARGET_RSS_MB else 'MISSES'} <= {TARGET_RSS_MB} MB"
    )
    return lines


def _child(n_accounts: int, n_leads: int, seed: int, *, plain: bool = False) -> dict[str, Any]:
    """One size measured in a fresh process; `plain`: with the routing core's sources, even
    where it is compiled (`LEADROUTER_PLAIN_PYTHON`)."""
    environment = {**os.environ}
    environment.pop("LEADROUTER_PLAIN_PYTHON", None)
    if plain:
        environment["LEADROUTER_PLAIN_PYTHON"] = "1"
    command = [
        sys.executable,
        "-m",
        "bench.bench_routing",
        "--accounts",
        str(n_accounts),
        "--leads",
        str(n_leads),
        "--seed",
        str(seed),
        "--json",
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def plain_against_compiled(seed: int, rounds: int = 2) -> dict[str, Any]:
    """The compiled core against its sources on this machine, now: 20,000 leads at 100,000
    accounts, alternately, `rounds` times each (this VM's speed wanders between runs far more
    than within one). Decisions/s with a fixed `now`."""
    plain: list[float] = []
    compiled: list[float] = []
    for _ in range(rounds):
        for kind, runs in (("plain", plain), ("compiled", compiled)):
            result = _child(100_000, AB_LEADS, seed, plain=kind == "plain")
            runs.append(result["runs"]["fixed_now"]["decisions_per_s"])
            _log(f"  {kind}: {runs[-1]:,.0f} decisions/s")
    ratios = [c / p for p, c in zip(plain, compiled, strict=True)]
    return {
        "accounts": 100_000,
        "leads": AB_LEADS,
        "plain_decisions_per_s": plain,
        "compiled_decisions_per_s": compiled,
        "compiled_over_plain": [round(ratio, 2) for ratio in ratios],
    }


AB_LEADS = 20_000


def _revision() -> str | None:
    """The commit measured, with "+dirty" when routing/ has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "routing"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return None
    return f"{commit}+dirty" if commit and dirty else commit or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_routing", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 1M-account size")
    parser.add_argument("--accounts", type=int, help="run one size in this process")
    parser.add_argument("--leads", type=int, default=DEFAULT_LEADS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", action="store_true", help="print one size's result as JSON")
    parser.add_argument("--profile", type=int, metavar="LEADS", help="cProfile a run of LEADS")
    args = parser.parse_args(argv)

    if args.profile:
        print(profile(args.accounts or 100_000, args.profile, args.seed))
        return 0
    if args.accounts:
        result = measure(args.accounts, args.leads, args.seed)
        print(json.dumps(result) if args.json else describe(result))
        return 0

    sizes = QUICK_SIZES if args.quick else SIZES
    results = []
    _log(f"routing core: {routing_core()}")
    for size in sizes:
        _log(f"--- {size:,} accounts, in a fresh process")
        results.append(_child(size, args.leads, args.seed))
    comparison = None
    if compiled_modules():
        _log("--- plain Python against compiled, alternately, 100,000 accounts")
        comparison = plain_against_compiled(args.seed)
    for result in results:
        print(describe(result), end="\n\n")
    for run, title in (("fixed_now", "fixed now"), ("live_clock", "now + 10 ms per lead")):
        shares = ", ".join(f"{r['accounts']:,}: {r['runs'][run]['cpu_share']}" for r in results)
        print(f"## Scaling, {title}\n{table(results, run)}\n(CPU share {shares})", end="\n\n")
    headline = next((r for r in results if r["accounts"] == 100_000), None)
    if headline is not None and headline["leads"] == DEFAULT_LEADS:
        print("## Targets at 100,000 accounts\n" + "\n".join(verdict(headline)))
    if comparison is not None:
        pairs = zip(
            comparison["plain_decisions_per_s"], comparison["compiled_decisions_per_s"], strict=True
        )
        print(
            f"\n## Plain Python against compiled, {AB_LEADS:,} leads at 100,000 accounts, "
            "alternately\n"
            + "; ".join(f"{plain:,.0f} against {compiled:,.0f}" for plain, compiled in pairs)
            + f" decisions/s ({', '.join(f'{r}x' for r in comparison['compiled_over_plain'])})"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "revision": _revision(),
                "python": platform.python_version(),
                "routing_core": routing_core(),
                "plain_against_compiled": comparison,
                "machine": platform.machine(),
                "processor": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "when": datetime.now().astimezone().isoformat(timespec="seconds"),
                "targets": {
                    "decisions_per_s": TARGET_RATE,
                    "p99_us": TARGET_P99_US,
                    "peak_rss_mb": TARGET_RSS_MB,
                },
                "results": results,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
