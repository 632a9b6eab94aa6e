"""Writes the example corpus a fresh install trains its first local model on.

`python tools/corpus_generate.py` rewrites `training/corpus/valence_examples.jsonl`, the data
file the bootstrap ships with. This is a tool that made a data file, so it lives outside the
installed packages. The output is a pure function of SEED: a seeded `random.Random`, no
network, standard library only.

Each record pairs one English text with the triples it states, in the WebNLG JSONL shape:
{"id": "valence/<n>", "entry_id": "valence/e<k>", "text": ..., "triples": [[s, p, o], ...]}.
Records of one entry share a triple set and differ in wording.

How the variety is made: a *plan* (a tree of facts around one entity, several subjects sharing
facts, or parallel facts about different subjects) is sampled from large entity pools, then
realised by choosing, per fact, among many realisations (main verb phrase, passive or possessive
clause, relative clause, apposition, fronted modifier, premodifier, pronoun in a later sentence).
Every text is checked before it is kept: each entity is in the text verbatim, each date, number
or amount is rendered, and the sentence is well formed.

Conventions in the triples: entity names keep their spaces and capitals; dates are
"YYYY-MM-DD"; founding years are "YYYY"; counts are plain digits; money is "<digits> <ISO code>"
("250000 USD"); versions and licences are written as in the text ("2.4.1", "Apache 2.0").
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20250611
OUTPUT = Path(__file__).resolve().parent.parent / "training" / "corpus" / "valence_examples.jsonl"

# Records per number of triples; about 35 / 30 / 20 / 15 per cent.
SIZE_QUOTAS = {1: 560, 2: 480, 3: 320, 4: 144, 5: 96}

MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
NUMBER_WORDS = {
    2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
    10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen",
    16: "sixteen", 17: "seventeen", 18: "eighteen", 19: "nineteen", 20: "twenty", 25:
    "twenty-five", 30: "thirty", 40: "forty", 50: "fifty",
}  # fmt: skip
# Things "it" could refer to; places, dates and abstract nouns are not read that way.
_IT_KINDS = frozenset({
    "company", "team", "group", "project", "service", "document", "tool", "lang", "framework",
    "platform", "conference",
})  # fmt: skip
LITERAL_KINDS = frozenset({"date", "future_date", "year", "number", "money"})
# Entities that can be the subject of a fact (and so be described further).
SUBJECT_KINDS = frozenset({"person", "company", "team", "project", "service"})


# --- entities --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    name: str  # exactly as it appears in the triple
    kind: str
    the: bool = False  # written with "the" in running text ("the Atlas team")
    pronoun: str = "it"  # she / he / it
    article: str = ""  # titles only: "the" for one-per-company titles, else "a"
    plural: bool = False


# Given names (female, male) and family names by culture, so that names mix plausibly.
_CULTURES = [
    ("Ana Beatriz Mariana Inês Larissa", "João Tiago Rafael Bruno Pedro",
     "Souza Ferreira Costa Almeida Ribeiro"),
    ("Lucía Camila Valentina Sofía Daniela", "Mateo Diego Javier Andrés Carlos",
     "García Morales Herrera Castillo Vargas"),
    ("Adaeze Chiamaka Funmilayo Ngozi Temitope", "Chinedu Oluwaseun Emeka Babajide Tunde",
     "Okafor Adeyemi Nwosu Balogun Eze"),
    ("Wanjiru Achieng Njeri Nyambura Zawadi", "Kamau Otieno Baraka Mwangi Juma",
     "Kariuki Odhiambo Mutua Njoroge Wambua"),
    ("Priya Ananya Kavya Meera Divya", "Ravi Arjun Vikram Rohan Siddharth",
     "Sharma Iyer Patel Reddy Banerjee"),
    ("Mei Xiaoling Yuxin Jing Lan", "Wei Hao Jun Zhiwei Tao", "Chen Wang Liu Zhang Huang"),
    ("Yuki Haruka Aiko Sakura Emi", "Kenji Takeshi Haruto Daichi Ren",
     "Tanaka Sato Nakamura Kobayashi Watanabe"),
    ("Ji-woo Seo-yeon Min-ji Hye-jin Soo-ah", "Min-jun Ji-ho Hyun-woo Seung-min Dong-hyun",
     "Kim Park Lee Choi Jung"),
    ("Linh Thao Huong Mai Ngoc", "Minh Duc Quang Tuan Khoa", "Nguyen Tran Pham Le Vo"),
    ("Layla Fatima Yasmin Noor Salma", "Omar Karim Youssef Tariq Hamza",
     "Haddad Mansour Khalil Nasser Saleh"),
    ("Elif Zeynep Ayşe Defne Ebru", "Emre Mehmet Burak Kerem Serkan",
     "Yılmaz Demir Kaya Şahin Aydın"),
    ("Agnieszka Zofia Katarzyna Marta Olga", "Piotr Tomasz Jakub Mikołaj Marek",
     "Nowak Horvat Zając Kowal Babić"),
    ("Lena Freya Ingrid Annika Sanne", "Lukas Jonas Sven Matthias Pieter",
     "Becker Schmidt Jansen Lindqvist Vermeulen"),
    ("Chloe Emma Siobhan Grace Hannah", "Chris James Liam Owen Marcus",
     "Walker O'Brien Hughes Bennett Fletcher"),
    ("Camille Amélie Élodie Margaux Juliette", "Théo Julien Mathieu Antoine Hugo",
     "Dubois Lefèvre Moreau Girard Fontaine"),
    ("Giulia Chiara Francesca Alessia Martina", "Luca Marco Giorgio Davide Matteo",
     "Rossi Bianchi Romano Esposito Ricci"),
    ("Shirin Parisa Niloufar Ladan Maryam", "Arash Dariush Kaveh Reza Babak",
     "Rahimi Tehrani Farahani Karimi Moradi"),
    ("Akosua Ama Efua Abena Adwoa", "Kwame Kofi Yaw Kwabena Kojo",
     "Mensah Boateng Asante Owusu Appiah"),
    ("Noa Tamar Yael Shira Maya", "Eitan Yonatan Ariel Noam Avi",
     "Levi Cohen Friedman Ben-David Katz"),
    ("Dewi Putri Ayu Maricel Rosalind", "Budi Agus Rizky Paolo Jomar",
     "Santoso Wijaya Hidayat Reyes Bautista"),
    ("Eleni Katerina Ioanna Despina Vasiliki", "Nikos Giannis Stavros Kostas Dimitris",
     "Papadopoulos Georgiou Nikolaidis Christodoulou Vlachos"),
    ("Selam Hiwot Meron Tigist Rahel", "Dawit Yonas Abel Henok Tesfaye",
     "Bekele Tadesse Haile Girma Alemu"),
    ("Oksana Iryna Nataliya Daria Svitlana", "Andriy Serhiy Oleksiy Ivan Oleksandr",
     "Shevchenko Bondarenko Melnyk Kovalenko Tkachenko"),
    ("Aroha Mere Kiri Ngaio Hine", "Tane Wiremu Nikau Rawiri Manaia",
     "Ngata Parata Walker-Tui Horomona Te Rangi"),
]  # fmt: skip

COMPANIES = """Valence|Orbit Labs|Nimbus Systems|Kestrel Analytics|Brightwave|Tessellate|
Northwind Robotics|Lumen Health|Quillpad|Ferrous Data|Harbourline|Meridian Cloud|Solstice Games|
Tidewater Energy|Granary|Bluefin Logistics|Copperleaf|Larkspur AI|Saltmarsh Bank|Mosswood|
Pelican Pay|Redshank Security|Umber Studio|Verdant Farms|Waypoint Travel|Yarrow Insurance|
Zephyr Mobility|Acorn Learning|Basilisk Biotech|Cinder Media|Driftless|Everwild|Foxglove Labs|
Gildmark|Hearth & Co|Inkwell Legal|Juniper Grid|Kiln Robotics|Lodestar Health|Marigold Telecom|
Nettle|Opaline|Parsec Systems|Quokka Software|Riverbend Capital|Sorrel Health|Thistle Data|
Ultramarine|Vireo|Wrenfield|Xylem Works|Yellowtail|Zinnia Labs|Amberjack|Blackthorn Security|
Cloudberry|Dovetail Software|Emberline|Fathom Analytics|Glasswing|Halcyon Bio|Ironbark|
Jacaranda Media|Kumquat|Lanternfish|Mangrove Finance|Northstar Freight|Oakhaven|Pebblestone|
Quayside|Rosewater Retail|Seabright|Tamarind Foods|Upland Maps|Vellum|Wildflower Games"""
TEAMS = """Atlas|Payments|Search|Growth|Platform|Data Infrastructure|Mobile|Identity|Billing|
Developer Experience|Observability|Checkout|Onboarding|Security|Machine Learning|Core API|
Design Systems|Reliability|Fraud Prevention|Localisation|Compiler|Storage|Networking|Analytics|
Kraken|Phoenix|Nova|Orca|Firefly|Web Performance|Accessibility|Ads|Recommendations|
Notifications|Maps|Voice|Integrations|Release Engineering|QA Automation|Edge|Trust and Safety|
Marketplace|Pricing|Partner API|Frontend Platform|Data Science|Streaming|Support Tools"""
GROUPS = """Platform group|Product Engineering division|Infrastructure group|Consumer division|
Research department|Enterprise division|Data group|Core Services group|Growth organisation|
Mobile division|Engineering department|Payments division|Developer Platform group"""
PROJECTS = """Helios|Lighthouse|Tern|Mosaic|Quasar|Driftwood|Marlin|Beacon|Cobalt|Sable|Pangolin|
Kite|Saffron|Basalt|Ripple|Granite|Osprey|Aurora|Canopy|Fjord|Halyard|Ibis|Jetstream|Kelp|Loom|
Mistral|Nautilus|Paddock|Quill|Rook|Skylark|Trellis|Undertow|Vantage|Wicket|Zenith|Anvil|
Bramble|Cirrus|Estuary|Fable|Gantry|Hopper|Inlet|Jolt|Keel|Lattice|Monsoon|Nebula|Oriel|Prism|
Quarry|Relay|Spindle|Tallow|Umbra|Sextant|Foghorn|fastmatch|tinyqueue|jsonsift|taskweave|
pgmirror|loglens|snapdiff|cachekit|httpwhirl|depgraph"""
SERVICES = """billing service|search API|payments gateway|notification service|auth service|
recommendation engine|ingestion pipeline|reporting dashboard|admin console|checkout service|
feature-flag service|image resizer|email relay|audit log|rate limiter|session store|
metrics pipeline|pricing engine|invoice generator|data warehouse|booking API|geocoding service"""
DOCUMENT_KINDS = """onboarding guide|migration guide|style guide|design document|deployment runbook|
incident report|API reference|testing handbook|architecture overview|release checklist|
security review|contributor guide"""
# Infrastructure a project or service can be built on; people use these and the desk tools.
INFRA = """Docker|Kubernetes|Terraform|Ansible|Jenkins|GitHub Actions|CircleCI|Grafana|Prometheus|
Sentry|Datadog|PostgreSQL|Redis|Kafka|Elasticsearch|SQLite|Bazel|Nix|dbt|Airflow|Podman|
Buildkite|RabbitMQ|ClickHouse|MySQL|MongoDB|Nginx|Envoy|Vault|Consul|OpenTelemetry|Temporal"""
DESK_TOOLS = """Vim|Neovim|Emacs|VS Code|IntelliJ IDEA|tmux|Git|Jira|Linear|Notion|Figma|Slack|
Postman|Helix|Zed|Sublime Text|JupyterLab|Obsidian|Wireshark|ripgrep|fzf|Zsh|Vagrant|Miro|
Confluence|Excalidraw|Raycast|Warp|htop|Tableau"""
LANGUAGES = """Rust|Python|Go|TypeScript|JavaScript|Kotlin|Haskell|Elixir|Java|C++|Swift|OCaml|
Scala|Ruby|Julia|Zig|Clojure|F#|Dart|Erlang|PHP|Lua|Nim|Gleam|C#|Perl|Crystal|Elm|Racket"""
FRAMEWORKS = """Django|React|Ruby on Rails|Spring Boot|FastAPI|Vue|Svelte|Phoenix|Flask|Angular|
Next.js|PyTorch|TensorFlow|Laravel|Express|Flutter|SwiftUI|Jetpack Compose|Actix|Axum|Tokio|
htmx|Tailwind CSS|Remix|NestJS|Ktor|Gin|Qt|Bevy|pandas|Polars|Hotwire|Astro|SolidJS|Quarkus|
ASP.NET Core|Nuxt|Celery|JAX"""
PLATFORMS = """GitHub|GitLab|Bitbucket|Codeberg|AWS|Google Cloud|Azure|Fly.io|Heroku|Vercel|
Netlify|Hetzner|DigitalOcean|Render|Cloudflare Workers|OpenShift"""
CITIES = """Lisbon|Berlin|Nairobi|Lagos|São Paulo|Bengaluru|Seoul|Kyoto|Toronto|Mexico City|
Melbourne|Reykjavík|Accra|Hanoi|Istanbul|Warsaw|Dublin|Montreal|Buenos Aires|Cape Town|Jakarta|
Manila|Cairo|Tel Aviv|Amman|Athens|Kyiv|Tbilisi|Tallinn|Helsinki|Oslo|Copenhagen|Amsterdam|
Rotterdam|Barcelona|Madrid|Porto|Milan|Turin|Lyon|Zurich|Vienna|Prague|Budapest|Bucharest|
Edinburgh|Manchester|Bristol|Austin|Seattle|Chicago|Denver|Atlanta|Vancouver|Bogotá|Lima|
Santiago|Montevideo|Kigali|Addis Ababa|Dakar|Casablanca|Dubai|Karachi|Dhaka|Colombo|Kathmandu|
Singapore|Kuala Lumpur|Bangkok|Taipei|Shenzhen|Osaka|Busan|Auckland|Wellington|Hyderabad|Pune"""
# (name, takes "the")
UNIVERSITIES = [
    ("University of Lagos", True), ("University of Nairobi", True), ("ETH Zurich", False),
    ("Seoul National University", False), ("IIT Bombay", False), ("Tsinghua University", False),
    ("University of São Paulo", True), ("McGill University", False), ("KTH", False),
    ("Imperial College London", False), ("University of Cape Town", True),
    ("National University of Singapore", True), ("American University of Beirut", True),
    ("University of Tokyo", True), ("Politecnico di Milano", True), ("TU Delft", False),
    ("University of Edinburgh", True), ("Sorbonne University", False),
    ("University of Ghana", True), ("Addis Ababa University", False),
    ("Technion", False), ("University of Toronto", True), ("Universidad de los Andes", False),
    ("University of Warsaw", True), ("Bilkent University", False), ("Ateneo de Manila", False),
    ("University of Melbourne", True), ("Kyiv Polytechnic Institute", False),
    ("Carnegie Mellon University", False), ("University of Waterloo", True),
    ("Aalto University", False), ("Sharif University of Technology", False),
    ("Makerere University", False), ("Hanoi University of Science and Technology", False),
    ("University of Auckland", True), ("IIT Madras", False),
]  # fmt: skip
SPOKEN = """English|Portuguese|Spanish|French|German|Yoruba|Igbo|Swahili|Amharic|Hindi|Tamil|
Bengali|Mandarin|Cantonese|Japanese|Korean|Vietnamese|Arabic|Turkish|Polish|Ukrainian|Greek|
Persian|Hebrew|Dutch|Italian|Indonesian|Tagalog|Twi|Swedish|Finnish|Catalan|Urdu|Thai|Māori"""
ROLES = """backend engineer|frontend engineer|data scientist|product designer|engineering manager|
site reliability engineer|product manager|technical writer|security engineer|QA engineer|
mobile developer|data engineer|machine learning engineer|UX researcher|developer advocate|
DevOps engineer|solutions architect|full-stack developer|embedded engineer|game developer|
support engineer|analytics engineer|platform engineer|iOS developer|Android developer|
database administrator|release manager|research scientist|infrastructure engineer|
software engineer|data analyst|design technologist"""
# (title, article): "the" where a company has one of them
TITLES = [
    ("CTO", "the"), ("CEO", "the"), ("COO", "the"), ("VP of Engineering", "the"),
    ("VP of Product", "the"), ("Head of Design", "the"), ("Head of Engineering", "the"),
    ("Head of Data", "the"), ("Head of Security", "the"), ("Chief Product Officer", "the"),
    ("Chief Architect", "the"), ("Director of Engineering", "the"), ("Head of People", "the"),
    ("Director of Data Science", "the"), ("Staff Engineer", "a"), ("Principal Engineer", "a"),
    ("Senior Software Engineer", "a"), ("Lead Designer", "a"), ("Distinguished Engineer", "a"),
    ("Senior Product Manager", "a"), ("Engineering Fellow", "an"), ("Senior Data Scientist", "a"),
]  # fmt: skip
FIELDS = """distributed systems|accessibility|machine learning|compiler design|database internals|
application security|developer tooling|data visualisation|observability|
natural language processing|computer vision|performance engineering|cryptography|
embedded systems|frontend architecture|API design|site reliability|type systems|search ranking|
mobile performance|privacy engineering|payments infrastructure|stream processing|
interaction design|game engines|robotics|network protocols|query optimisation"""
HOBBIES = """rock climbing|chess|sourdough baking|long-distance running|board games|photography|
gardening|cycling|bouldering|birdwatching|pottery|sailing|woodworking|knitting|jazz piano|
salsa dancing|hiking|trail running|surfing|calligraphy|origami|crosswords|amateur astronomy|
fly fishing|open-water swimming|sketching|karaoke|cooking|yoga|football|table tennis|kayaking"""
INDUSTRIES = """fintech|healthcare|logistics|e-commerce|edtech|gaming|climate tech|cybersecurity|
biotech|media|travel|insurance|agritech|robotics|legal tech|real estate|renewable energy|
telecommunications|retail|developer tools"""
PREFS = """composable architectures|small pull requests|pair programming|asynchronous communication|
written design documents|dark mode|static typing|functional programming|monorepos|
trunk-based development|test-driven development|immutable infrastructure|feature flags|
short meetings|plain-text notes|mechanical keyboards|standing desks|remote work|quiet offices|
early mornings|thorough code reviews|property-based testing|server-side rendering|
boring technology|small teams|clear commit messages|squash merges|event-driven architectures|
declarative configuration|strongly typed APIs|continuous deployment|blameless postmortems|
explicit error handling|readable code|whiteboard sessions|minimal dependencies|light mode|
kanban boards|written stand-ups|flexible hours|four-day weeks|tabs|long-lived branches|
in-person workshops|detailed tickets"""
ANTIPREFS = """long meetings|flaky tests|merge conflicts|YAML|dynamic typing|open-plan offices|
microservices|premature optimisation|late-night deploys|vague tickets|magic numbers|
deep inheritance hierarchies|global state|tight deadlines|meetings without agendas|
Friday releases|noisy notifications|excessive abstraction|ORMs|cluttered dashboards|
long email threads|manual deployments|unclear requirements|slow builds|nested callbacks|
code freezes|verbose logging|context switching|cold offices|surprise deadlines|
monolithic repositories|spreadsheets|daily stand-ups"""
CONFERENCES = """RustConf|PyCon Africa|KubeCon Europe|JSConf EU|GopherCon|Strange Loop|DjangoCon US|
FOSDEM|PyCon APAC|Devoxx|QCon London|NDC Oslo|ElixirConf|React Summit|EuroPython|SREcon|
Lambda World|RubyConf|Open Source Summit|Web Summit|CppCon|Data Council|NeurIPS|PyData Berlin|
DevFest Lagos"""
LICENCES = "MIT|Apache 2.0|GPL-3.0|BSD 3-Clause|MPL 2.0|AGPL-3.0|ISC|LGPL-2.1|EUPL 1.2"
# Plural-looking names that read as singular.
_SINGULAR = {"analytics", "robotics", "logistics", "media", "news", "mathematics", "tabs"}


def _split(pool: str) -> list[str]:
    return [item.strip() for item in pool.replace("\n", "").split("|") if item.strip()]


def _is_plural(name: str) -> bool:
    last = name.split()[-1]
    return name not in _SINGULAR and last.endswith("s") and not last.endswith("ss")


def _build_pools() -> dict[str, list[Entity]]:
    people: list[Entity] = []
    for female, male, surnames in _CULTURES:
        family = surnames.split(" ")
        if family[-1] == "Rangi":  # "Te Rangi" is one family name
            family = [*family[:-2], "Te Rangi"]
        for names, pronoun in ((female, "she"), (male, "he")):
            for index, given in enumerate(names.split()):
                people.append(Entity(given, "person", pronoun=pronoun))
                surname = family[index % len(family)]
                other = family[(index + 2) % len(family)]
                people.append(Entity(f"{given} {surname}", "person", pronoun=pronoun))
                people.append(Entity(f"{given} {other}", "person", pronoun=pronoun))
    projects = _split(PROJECTS)
    documents = [
        Entity(f"{project} {kind}", "document", the=True)
        for index, project in enumerate(projects)
        for offset, kind in enumerate(_split(DOCUMENT_KINDS))
        if (index + offset) % 4 == 0
    ]
    pools: dict[str, list[Entity]] = {
        "person": people,
        "company": [Entity(name, "company") for name in _split(COMPANIES)],
        "team": [Entity(f"{name} team", "team", the=True) for name in _split(TEAMS)],
        "group": [Entity(name, "group", the=True) for name in _split(GROUPS)],
        "project": [Entity(name, "project") for name in projects],
        "service": [Entity(name, "service", the=True) for name in _split(SERVICES)],
        "document": documents,
        "tool": [Entity(name, "tool") for name in _split(INFRA) + _split(DESK_TOOLS)],
        "infra": [Entity(name, "tool") for name in _split(INFRA)],
        "lang": [Entity(name, "lang") for name in _split(LANGUAGES)],
        "framework": [Entity(name, "framework") for name in _split(FRAMEWORKS)],
        "platform": [Entity(name, "platform") for name in _split(PLATFORMS)],
        "city": [Entity(name, "city") for name in _split(CITIES)],
        "university": [Entity(name, "university", the=the) for name, the in UNIVERSITIES],
        "spoken": [Entity(name, "spoken") for name in _split(SPOKEN)],
        "role": [Entity(name, "role") for name in _split(ROLES)],
        "title": [Entity(name, "title", article=article) for name, article in TITLES],
        "field": [Entity(name, "field") for name in _split(FIELDS)],
        "hobby": [Entity(name, "hobby", plural=_is_plural(name)) for name in _split(HOBBIES)],
        "industry": [Entity(name, "industry") for name in _split(INDUSTRIES)],
        "pref": [Entity(name, "pref", plural=_is_plural(name)) for name in _split(PREFS)],
        "antipref": [
            Entity(name, "antipref", plural=_is_plural(name)) for name in _split(ANTIPREFS)
        ],
        "conference": [Entity(name, "conference") for name in _split(CONFERENCES)],
        "licence": [Entity(name, "licence") for name in _split(LICENCES)],
    }
    return pools


POOLS = _build_pools()


# --- templates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class T:
    """One realisation; {placeholders} are filled by the Realiser (see its getters)."""

    text: str
    s: frozenset[str] | None = None  # subject kinds it suits (None: all)
    o: frozenset[str] | None = None  # object kinds it suits (None: all)
    n: str | None = None  # "1": one object only, "m": a list of objects only
    named: bool = False  # needs the subject's name: "Helios 2.0 was released", not "It 2.0"


def t(text: str, s: str = "", o: str = "", n: str | None = None, named: bool = False) -> T:
    return T(text, frozenset(s.split()) or None, frozenset(o.split()) or None, n, named)


@dataclass
class Pred:
    subj: str
    obj: str
    vp: list[T]  # after a subject: "prefers {o}"
    clause: list[T] = field(default_factory=list)  # whole sentences naming {s}
    app: list[T] = field(default_factory=list)  # apposition to the subject: "Ana, {app}, ..."
    front: list[T] = field(default_factory=list)  # "{front}, Ana ..."
    rel: list[T] = field(default_factory=list)  # extra relative clauses: "whose ..."
    orel: list[T] = field(default_factory=list)  # attached to the object: "Orbit, {orel}, ..."
    premod: list[T] = field(default_factory=list)  # the subject as a modified NP: {x}
    multi: bool = False  # several objects can share one mention: "uses Vim, tmux and Git"

    @property
    def subjects(self) -> list[str]:
        return self.subj.split()

    @property
    def objects(self) -> list[str]:
        return self.obj.split()


P: dict[str, Pred] = {
    "prefers": Pred(
        "person", "pref lang tool framework", multi=True,
        vp=[t("prefers {o}"), t("has a preference for {o}"), t("favours {o}"),
            t("leans towards {o}"), t("tends to prefer {o}"), t("is a fan of {o}"),
            t("would rather work with {o}", o="lang tool framework"), t("is partial to {o}"),
            t("is an advocate of {o}", o="pref"), t("is a big believer in {o}", o="pref")],
        clause=[t("{s_pos} preference is for {o}"), t("{o} {be} what {s} prefers"),
                t("Given the choice, {s} goes for {o}"),
                t("If {s} can choose, {sub} will pick {o}", n="1"),
                t("When it comes to languages, {s} prefers {o}", o="lang"),
                t("When it comes to tooling, {s} prefers {o}", o="tool framework"),
                t("When it comes to ways of working, {s} prefers {o}", o="pref")],
        app=[t("a fan of {o}"), t("an advocate of {o}", o="pref")],
        front=[t("A fan of {o}"), t("A firm believer in {o}", o="pref")],
    ),
    "dislikes": Pred(
        "person", "antipref tool lang framework", multi=True,
        vp=[t("dislikes {o}"), t("can't stand {o}"), t("is not a fan of {o}"),
            t("avoids {o} whenever possible"), t("has no patience for {o}"),
            t("does not like {o}"), t("finds {o} frustrating"), t("has little love for {o}"),
            t("has never liked {o}")],
        clause=[t("{s_pos} pet peeve is {o}", n="1"), t("One thing {s} dislikes is {o}", n="1"),
                t("If there is one thing {s} cannot stand, it is {o}", n="1"),
                t("{o} {be} not to {s_pos} taste"),
                t("{s} is no fan of {o}")],
        front=[t("No fan of {o}")],
    ),
    "worksAt": Pred(
        "person", "company",
        vp=[t("works at {o}"), t("works for {o}"), t("is employed by {o}"),
            t("is employed at {o}"), t("has a job at {o}"), t("is an employee of {o}")],
        clause=[t("{o} employs {s}"), t("{s_pos} employer is {o}"),
                t("{s} is one of {o_pos} employees"), t("{o} is where {s} works"),
                t("{s} earns {pp} living at {o}")],
        app=[t("an employee of {o}")],
        front=[t("An employee of {o}")],
        rel=[t("whose employer is {o}")],
        orel=[t("where {s} works"), t("which employs {s}"), t("{s_pos} employer")],
    ),
    "memberOf": Pred(
        "person", "team",
        vp=[t("is a member of {o}"), t("is on {o}"), t("belongs to {o}"), t("works on {o}"),
            t("is in {o}"), t("sits in {o}")],
        clause=[t("{o} counts {s} among its members"), t("{o} includes {s}"),
                t("{s_pos} team is {o}"), t("{s} is one of the people on {o}")],
        app=[t("a member of {o}")],
        front=[t("As a member of {o}")],
        orel=[t("whose members include {s}"), t("to which {s} belongs"), t("{s_pos} team")],
    ),
    "leads": Pred(
        "person", "team project",
        vp=[t("leads {o}"), t("heads {o}", o="team"), t("is the lead of {o}"),
            t("is in charge of {o}"), t("runs {o}"), t("is the leader of {o}", o="team"),
            t("leads the work on {o}", o="project")],
        clause=[t("{o} is led by {s}"), t("{o} is headed by {s}", o="team"),
                t("{s} is {o_pos} lead"), t("The lead of {o} is {s}"), t("{o} is run by {s}")],
        app=[t("the lead of {o}"), t("{o_pos} lead")],
        front=[t("As the lead of {o}"), t("As head of {o}", o="team")],
        orel=[t("which {s} leads"), t("led by {s}"), t("headed by {s}", o="team")],
    ),
    "manages": Pred(
        "person", "team person",
        vp=[t("manages {o}"), t("is the manager of {o}"), t("is {o_pos} manager"),
            t("oversees {o}", o="team"), t("line-manages {o}", o="person")],
        clause=[t("{o} is managed by {s}"), t("{o_pos} manager is {s}"),
                t("{o} has {s} as a manager", o="person")],
        app=[t("{o_pos} manager"), t("the manager of {o}")],
        front=[t("As {o_pos} manager"), t("As the manager of {o}")],
        orel=[t("whom {s} manages", o="person"), t("which {s} manages", o="team"),
              t("who is managed by {s}", o="person"), t("managed by {s}")],
    ),
    "reportsTo": Pred(
        "person", "person",
        vp=[t("reports to {o}"), t("reports directly to {o}"), t("answers to {o}")],
        clause=[t("The person {s} reports to is {o}"), t("In the org chart, {s} reports to {o}")],
        orel=[t("to whom {s} reports"), t("who has {s} as a direct report")],
    ),
    "mentors": Pred(
        "person", "person", multi=True,
        vp=[t("mentors {o}"), t("is a mentor to {o}"), t("acts as a mentor to {o}"),
            t("is {o_pos} mentor"), t("coaches {o}")],
        clause=[t("{o} {be} mentored by {s}"), t("{o_pos} mentor is {s}"),
                t("{s} has taken {o} under {pp} wing")],
        app=[t("{o_pos} mentor"), t("a mentor to {o}")],
        front=[t("As {o_pos} mentor")],
        orel=[t("whom {s} mentors", n="1"), t("who is mentored by {s}", n="1"),
              t("{s_pos} mentee", n="1")],
    ),
    "uses": Pred(
        "person team company project service", "tool lang framework", multi=True,
        vp=[t("uses {o}"), t("works with {o}", s="person team company"),
            t("relies on {o}", s="person team company"), t("uses {o} every day", s="person"),
            t("builds with {o}", s="person team company", o="lang framework"),
            t("has adopted {o}", s="team company"), t("makes heavy use of {o}"),
            t("writes {o}", s="person", o="lang"), t("codes in {o}", s="person", o="lang"),
            t("is built with {o}", s="project service", o="framework tool"),
            t("uses {o} under the hood", s="project service")],
        clause=[t("{o} {be} used by {s}"),
                t("{s_pos} toolkit includes {o}", s="person", o="tool"),
                t("{s_pos} stack includes {o}", s="team company project service"),
                t("{o} {be} part of {s_pos} daily workflow", s="person", o="tool"),
                t("{o} {be} part of {s_pos} stack", s="team company project service"),
                t("Day to day, {s} uses {o}", s="person"),
                t("{s} gets a lot of use out of {o}", s="person", o="tool")],
        front=[t("Built with {o}", s="project service")],
        orel=[t("which {s} uses", n="1"), t("used by {s}", n="1")],
    ),
    "maintains": Pred(
        "person team", "project service", multi=True,
        vp=[t("maintains {o}"), t("is the maintainer of {o}", s="person", n="1"),
            t("looks after {o}"), t("is responsible for maintaining {o}"),
            t("keeps {o} running", o="service"), t("takes care of {o}"),
            t("is one of the maintainers of {o}", s="person", n="1")],
        clause=[t("{o} {be} maintained by {s}"),
                t("The maintainer of {o} is {s}", s="person", n="1"),
                t("Maintenance of {o} falls to {s}")],
        app=[t("the maintainer of {o}", s="person", n="1"),
             t("a maintainer of {o}", s="person", n="1")],
        front=[t("As the maintainer of {o}", s="person", n="1")],
        orel=[t("which {s} maintains"), t("maintained by {s}")],
    ),
    "wrote": Pred(
        "person", "document",
        vp=[t("wrote {o}"), t("is the author of {o}"), t("authored {o}"), t("drafted {o}"),
            t("put together {o}")],
        clause=[t("{o} was written by {s}"), t("{o} is the work of {s}"),
                t("The author of {o} is {s}")],
        app=[t("the author of {o}")],
        front=[t("As the author of {o}")],
        orel=[t("which {s} wrote"), t("written by {s}"), t("authored by {s}")],
    ),
    "createdBy": Pred(
        "project", "person company", multi=True,
        vp=[t("was created by {o}"), t("was built by {o}"), t("was started by {o}"),
            t("is the creation of {o}"), t("was developed by {o}"),
            t("was originally built by {o}")],
        clause=[t("{o} created {s}"), t("{o} built {s}"),
                t("{o} is the creator of {s}", n="1"), t("{o} are the creators of {s}", n="m")],
        app=[t("created by {o}"), t("a project by {o}")],
        front=[t("Created by {o}"), t("Built by {o}"), t("Originally developed by {o}")],
        orel=[t("who created {s}", o="person"), t("which created {s}", o="company"),
              t("the creator of {s}", n="1"), t("{s_pos} creator", n="1")],
    ),
    "basedIn": Pred(
        "company team", "city",
        vp=[t("is based in {o}"), t("is headquartered in {o}", s="company"),
            t("has its headquarters in {o}", s="company"), t("operates out of {o}"),
            t("is located in {o}"), t("calls {o} home"), t("works out of {o}", s="team")],
        clause=[t("{o} is home to {s}"), t("{s_pos} headquarters are in {o}", s="company"),
                t("{s_pos} home base is {o}"), t("{s_pos} base is in {o}")],
        app=[t("{o_a}-based {noun}"), t("based in {o}")],
        front=[t("Based in {o}"), t("Headquartered in {o}", s="company")],
        rel=[t("whose headquarters are in {o}", s="company")],
        orel=[t("where {s} is based"), t("home to {s}"), t("which is home to {s}")],
        premod=[t("{the}{o}-based {x}")],
    ),
    "livesIn": Pred(
        "person", "city",
        vp=[t("lives in {o}"), t("resides in {o}"), t("makes {pp} home in {o}"),
            t("calls {o} home"), t("has settled in {o}"), t("now lives in {o}"),
            t("is a resident of {o}")],
        clause=[t("{s_pos} home is in {o}"), t("{o} is where {s} lives"),
                t("Home for {s} is {o}")],
        app=[t("a resident of {o}")],
        front=[t("A resident of {o}")],
        orel=[t("where {s} lives"), t("{s_pos} home city")],
    ),
    "bornIn": Pred(
        "person", "city",
        vp=[t("was born in {o}"), t("is originally from {o}"), t("hails from {o}"),
            t("is a native of {o}")],
        clause=[t("{s_pos} birthplace is {o}"), t("{o} is {s_pos} birthplace"),
                t("{o} is where {s} was born")],
        app=[t("a native of {o}"), t("born in {o}")],
        front=[t("Born in {o}"), t("Originally from {o}")],
        orel=[t("where {s} was born"), t("{s_pos} birthplace"), t("{s_pos} home town")],
    ),
    "joinedOn": Pred(
        "person", "date",
        vp=[t("joined on {o}"), t("started work on {o}"),
            t("has been on board since {o}"), t("was hired on {o}")],
        clause=[t("{s_pos} start date was {o}"), t("{s_pos} first day was {o}"),
                t("{s_pos} joining date is {o}")],
    ),
    "foundedIn": Pred(
        "company", "year",
        vp=[t("was founded in {o}"), t("was established in {o}"), t("was set up in {o}"),
            t("dates back to {o}"), t("has been around since {o}"), t("was started in {o}")],
        clause=[t("{s_pos} founding year is {o}"), t("{s} opened its doors in {o}"),
                t("{s} has existed since {o}")],
        app=[t("founded in {o}"), t("established in {o}")],
        front=[t("Founded in {o}"), t("Established in {o}")],
    ),
    "teamSize": Pred(
        "team", "number",
        vp=[t("has {o} members"), t("has {o} people"), t("is made up of {o} people"),
            t("consists of {o} people"), t("is {o} people strong"), t("has a headcount of {o}"),
            t("is {o_a}-person team"), t("has grown to {o} people")],
        clause=[t("There are {o} people on {s}"), t("{s_pos} headcount is {o}"),
                t("{o} people work on {s}")],
        app=[t("{o_a}-person team"), t("a team of {o}")],
        front=[t("With {o} members")],
        rel=[t("whose headcount is {o}")],
        premod=[t("the {o}-person {x}")],
    ),
    "employeeCount": Pred(
        "company", "number",
        vp=[t("has {o} employees"), t("employs {o} people"), t("has a workforce of {o}"),
            t("has a staff of {o}"), t("has {o} people on its payroll"),
            t("is {o_a}-person company"), t("has grown to {o} employees")],
        clause=[t("{s_pos} headcount is {o}"), t("{o} people work at {s}"),
                t("There are {o} employees at {s}")],
        app=[t("{o_a}-person company"), t("a company of {o} people")],
        front=[t("With {o} employees"), t("With a staff of {o}")],
        rel=[t("whose headcount is {o}")],
        premod=[t("the {o}-person company {x}")],
    ),
    "speaks": Pred(
        "person", "spoken", multi=True,
        vp=[t("speaks {o}"), t("is fluent in {o}"), t("can speak {o}"), t("speaks fluent {o}"),
            t("has a good command of {o}"), t("is a native {o} speaker", n="1"),
            t("gets by in {o}")],
        clause=[t("{o} is one of the languages {s} speaks", n="1"),
                t("{s_pos} languages include {o}")],
        app=[t("a fluent {o} speaker", n="1")],
        front=[t("A fluent {o} speaker", n="1")],
    ),
    "knows": Pred(
        "person", "lang framework tool", multi=True,
        vp=[t("knows {o}"), t("is familiar with {o}"), t("has a working knowledge of {o}"),
            t("is proficient in {o}"), t("is comfortable with {o}"), t("knows {o} well"),
            t("is well versed in {o}"), t("has experience with {o}"),
            t("knows {o} inside out")],
        clause=[t("{s_pos} skills include {o}")],
        front=[t("Proficient in {o}")],
    ),
    "specialisesIn": Pred(
        "person", "field",
        vp=[t("specialises in {o}"), t("focuses on {o}"), t("is a specialist in {o}"),
            t("has specialised in {o}"), t("is an expert in {o}"), t("works mainly on {o}")],
        clause=[t("{s_pos} speciality is {o}"), t("{s_pos} area of expertise is {o}"),
                t("{s_pos} specialism is {o}")],
        app=[t("a specialist in {o}"), t("an expert in {o}"), t("{o_a} specialist")],
        front=[t("A specialist in {o}"), t("An expert in {o}")],
        rel=[t("whose speciality is {o}")],
    ),
    "role": Pred(
        "person", "role",
        vp=[t("is {o_a}"), t("works as {o_a}"), t("is employed as {o_a}"),
            t("has a job as {o_a}"), t("makes a living as {o_a}")],
        clause=[t("{s_pos} role is that of {o_a}"), t("{s} has the role of {o}"),
                t("By profession, {s} is {o_a}")],
        app=[t("{o_a}")],
        front=[t("{o_a} by trade"), t("As {o_a}")],
        premod=[t("{o} {x}")],
    ),
    "title": Pred(
        "person", "title",
        vp=[t("is {o_t}"), t("holds the title of {o}"), t("serves as {o}"),
            t("has the title {o}"), t("was promoted to {o}")],
        clause=[t("{s_pos} title is {o}"), t("{s_pos} job title is {o}"),
                t("{s_pos} official title is {o}")],
        app=[t("{o_t}")],
        front=[t("As {o_t}")],
    ),
    "favouriteTool": Pred(
        "person", "tool",
        vp=[t("has {o} as {pp} favourite tool"), t("swears by {o}"),
            t("names {o} as {pp} favourite tool"), t("considers {o} {pp} favourite tool")],
        clause=[t("{s_pos} favourite tool is {o}"), t("{o} is {s_pos} favourite tool"),
                t("{s_pos} tool of choice is {o}"),
                t("If {s} could keep only one tool, it would be {o}")],
        rel=[t("whose favourite tool is {o}")],
        orel=[t("{s_pos} favourite tool"), t("which is {s_pos} favourite tool")],
    ),
    "primaryLanguage": Pred(
        "person project service", "lang",
        vp=[t("mainly writes {o}", s="person"), t("codes mostly in {o}", s="person"),
            t("works primarily in {o}", s="person"),
            t("uses {o} as {pp} primary language", s="person"),
            t("is written in {o}", s="project service"),
            t("is written mainly in {o}", s="project service"),
            t("is implemented in {o}", s="project service"),
            t("is built in {o}", s="project service"), t("is {o_a} project", s="project")],
        clause=[t("{s_pos} primary language is {o}"),
                t("{s_pos} main programming language is {o}", s="person"),
                t("{o} is {s_pos} main language", s="person"),
                t("The {s} codebase is written in {o}", s="project")],
        app=[t("{o_a} project", s="project")],
        front=[t("Written in {o}", s="project service")],
        rel=[t("whose primary language is {o}")],
        premod=[t("the {o} project {x}", s="project")],
    ),
    "migratedTo": Pred(
        "team company project service", "platform tool framework",
        vp=[t("migrated to {o}"), t("has migrated to {o}"), t("moved to {o}"),
            t("has moved over to {o}"), t("switched to {o}"), t("made the move to {o}")],
        clause=[t("{s_pos} migration to {o} is complete"),
                t("{s} has completed {pp} migration to {o}"),
                t("{s_pos} move to {o} is finished")],
    ),
    "deprecated": Pred(
        "team company", "service project tool framework",
        vp=[t("deprecated {o}"), t("has deprecated {o}"), t("is phasing out {o}"),
            t("marked {o} as deprecated")],
        clause=[t("{o} has been deprecated by {s}"), t("{o} was deprecated by {s}"),
                t("{o} is deprecated at {s}", s="company"),
                t("{s} no longer supports {o}")],
    ),
    "dependsOn": Pred(
        "project service", "project service framework tool", multi=True,
        vp=[t("depends on {o}"), t("relies on {o}"), t("requires {o}"),
            t("is built on top of {o}"), t("has a dependency on {o}"),
            t("cannot run without {o}")],
        clause=[t("{o} is a dependency of {s}", n="1"), t("{s_pos} dependencies include {o}"),
                t("Under the hood, {s} depends on {o}")],
    ),
    "releasedOn": Pred(
        "project", "date",
        vp=[t("was released on {o}"), t("came out on {o}"), t("shipped on {o}"),
            t("launched on {o}"), t("was first released on {o}")],
        clause=[t("{s_pos} release date was {o}"), t("{s} has been available since {o}"),
                t("The release of {s} took place on {o}")],
        front=[t("Released on {o}")],
    ),
    "version": Pred(
        "project", "version",
        vp=[t("is at version {o}"), t("is currently on version {o}"),
            t("has reached version {o}"), t("is now at v{o}")],
        clause=[t("The current version of {s} is {o}"), t("{s_pos} latest version is {o}"),
                t("The latest release of {s} is version {o}")],
        rel=[t("whose current version is {o}")],
        premod=[t("{x} {o}")],
    ),
    "licence": Pred(
        "project", "licence",
        vp=[t("is released under the {o} licence"), t("is licensed under {o}"),
            t("uses the {o} licence"), t("is available under the {o} licence"),
            t("is distributed under the {o} licence"), t("is {o}-licensed")],
        clause=[t("{s_pos} licence is {o}"), t("{s} is open source under the {o} licence"),
                t("The {o} licence covers {s}")],
        app=[t("{o_a}-licensed project")],
        front=[t("Released under the {o} licence")],
        rel=[t("whose licence is {o}")],
        premod=[t("the {o}-licensed {x}")],
    ),
    "partOf": Pred(
        "team", "group company",
        vp=[t("is part of {o}"), t("belongs to {o}"), t("sits within {o}"),
            t("falls under {o}"), t("is one of the teams in {o}", o="group"),
            t("is one of the teams at {o}", o="company")],
        clause=[t("{o} includes {s}")],
        app=[t("part of {o}")],
        front=[t("Part of {o}")],
        orel=[t("which includes {s}"), t("which {s} is part of")],
        premod=[t("{o_pos} {x}", o="company")],
    ),
    "ownedBy": Pred(
        "project service", "team company",
        vp=[t("is owned by {o}"), t("belongs to {o}"), t("is the responsibility of {o}")],
        clause=[t("{o} owns {s}"), t("Ownership of {s} lies with {o}"),
                t("{s} is one of {o_pos} projects", s="project")],
        app=[t("owned by {o}")],
        front=[t("Owned by {o}")],
        orel=[t("which owns {s}")],
        premod=[t("{o_pos} {x}", s="service")],
    ),
    "sponsors": Pred(
        "company", "project conference", multi=True,
        vp=[t("sponsors {o}"), t("is a sponsor of {o}"), t("financially supports {o}"),
            t("provides funding for {o}"), t("backs {o}")],
        clause=[t("{o} {be} sponsored by {s}"), t("{o} receives sponsorship from {s}", n="1"),
                t("{o} counts {s} among its sponsors", n="1")],
        orel=[t("which is sponsored by {s}", n="1"), t("sponsored by {s}", n="1")],
    ),
    "collaboratesWith": Pred(
        "person team", "person team", multi=True,
        vp=[t("collaborates with {o}"), t("works closely with {o}"), t("often works with {o}"),
            t("partners with {o}"), t("teams up with {o}"), t("works alongside {o}")],
        clause=[t("{s} and {o} collaborate", n="1"), t("{s} and {o} work closely together", n="1")],
        orel=[t("with whom {s} collaborates", o="person", n="1"),
              t("with which {s} collaborates", o="team", n="1")],
    ),
    "studiedAt": Pred(
        "person", "university",
        vp=[t("studied at {o}"), t("is a graduate of {o}"), t("graduated from {o}"),
            t("went to {o}"), t("attended {o}"), t("was educated at {o}"),
            t("is an {alum} of {o}")],
        clause=[t("{s_pos} alma mater is {o}"), t("{o} is {s_pos} alma mater"),
                t("{s} did {pp} degree at {o}")],
        app=[t("a graduate of {o}"), t("an {alum} of {o}")],
        front=[t("A graduate of {o}"), t("Educated at {o}")],
        orel=[t("where {s} studied"), t("{s_pos} alma mater")],
    ),
    "hasOfficeIn": Pred(
        "company", "city", multi=True,
        vp=[t("has an office in {o}", n="1"), t("has offices in {o}", n="m"),
            t("maintains an office in {o}", n="1"), t("operates an office in {o}", n="1"),
            t("has a presence in {o}"), t("runs offices in {o}", n="m"),
            t("keeps an office in {o}", n="1")],
        clause=[t("{o} is home to one of {s_pos} offices", n="1"),
                t("One of {s_pos} offices is in {o}", n="1")],
        front=[t("With offices in {o}", n="m"), t("With an office in {o}", n="1")],
        orel=[t("where {s} has an office", n="1")],
    ),
    "budget": Pred(
        "team project", "money",
        vp=[t("has a budget of {o}"), t("has been given a budget of {o}"),
            t("has {o} to spend"), t("operates on a budget of {o}"),
            t("has been allocated {o}")],
        clause=[t("{s_pos} budget is {o}"), t("The budget for {s} is {o}")],
        front=[t("With a budget of {o}")],
        rel=[t("whose budget is {o}")],
    ),
    "deadline": Pred(
        "project", "future_date",
        vp=[t("is due on {o}"), t("has a deadline of {o}"), t("must ship by {o}"),
            t("is due to be finished by {o}"), t("has to be delivered by {o}"),
            t("is scheduled for completion by {o}")],
        clause=[t("{s_pos} deadline is {o}"), t("The deadline for {s} is {o}"),
                t("{s} needs to be done by {o}")],
        rel=[t("whose deadline is {o}")],
    ),
    "enjoys": Pred(
        "person", "hobby", multi=True,
        vp=[t("enjoys {o}"), t("loves {o}"), t("is into {o}"), t("likes {o}"),
            t("has a passion for {o}"), t("is passionate about {o}")],
        clause=[t("In {pp} spare time, {s} enjoys {o}"), t("Outside work, {s} enjoys {o}"),
                t("{s_pos} hobbies include {o}"), t("When not at work, {s} enjoys {o}"),
                t("{s} spends {pp} weekends on {o}")],
    ),
    "yearsOfExperience": Pred(
        "person", "number",
        vp=[t("has {o} years of experience"), t("has worked in software for {o} years"),
            t("has been in the industry for {o} years"), t("brings {o} years of experience"),
            t("has {o} years in the field")],
        clause=[t("{s_pos} experience spans {o} years"),
                t("{s} has been writing software for {o} years")],
        front=[t("With {o} years of experience")],
    ),
    "contributesTo": Pred(
        "person", "project", multi=True,
        vp=[t("contributes to {o}"), t("is a contributor to {o}"),
            t("regularly contributes to {o}"), t("has contributed to {o}"),
            t("sends patches to {o}")],
        clause=[t("{o} counts {s} among its contributors", n="1"),
                t("{s} is one of the contributors to {o}", n="1")],
        app=[t("a contributor to {o}")],
        front=[t("A regular contributor to {o}")],
        orel=[t("to which {s} contributes", n="1")],
    ),
    "presentedAt": Pred(
        "person", "conference", multi=True,
        vp=[t("presented at {o}"), t("gave a talk at {o}"), t("spoke at {o}"),
            t("has presented at {o}"), t("has given talks at {o}")],
        clause=[t("{s} was a speaker at {o}"), t("At {o}, {s} gave a talk", n="1")],
        orel=[t("where {s} gave a talk", n="1")],
    ),
    "onCallFor": Pred(
        "person", "service",
        vp=[t("is on call for {o}"), t("carries the pager for {o}"),
            t("covers on-call for {o}"), t("is on the on-call rota for {o}"),
            t("handles on-call duty for {o}")],
        clause=[t("On-call duty for {o} falls to {s}"), t("When {o} breaks, {s} gets paged")],
        orel=[t("for which {s} is on call")],
    ),
    "recommends": Pred(
        "person", "tool framework lang pref", multi=True,
        vp=[t("recommends {o}"), t("suggests {o}"), t("always recommends {o}"),
            t("speaks highly of {o}"), t("is quick to recommend {o}")],
        clause=[t("{s_pos} recommendation is {o}", n="1"),
                t("{o} comes recommended by {s}", n="1"), t("{s} tells everyone to try {o}")],
    ),
    "foundedBy": Pred(
        "company", "person", multi=True,
        vp=[t("was founded by {o}"), t("was started by {o}"), t("was set up by {o}"),
            t("was co-founded by {o}", n="m")],
        clause=[t("{o} founded {s}"), t("{o} started {s}"), t("{o} is the founder of {s}", n="1"),
                t("{o} co-founded {s}", n="m"), t("{s_pos} founder is {o}", n="1"),
                t("{s_pos} founders are {o}", n="m")],
        app=[t("founded by {o}")],
        front=[t("Founded by {o}")],
        orel=[t("who founded {s}"), t("the founder of {s}", n="1"),
              t("{s_pos} founder", n="1")],
    ),
    "acquiredBy": Pred(
        "company", "company",
        vp=[t("was acquired by {o}"), t("was bought by {o}"), t("was taken over by {o}")],
        clause=[t("{o} acquired {s}"), t("{o} bought {s}"), t("{o} took over {s}")],
        app=[t("acquired by {o}")],
        front=[t("Acquired by {o}")],
        orel=[t("which acquired {s}")],
    ),
    "industry": Pred(
        "company", "industry",
        vp=[t("works in {o}"), t("operates in {o}"), t("is {o_a} company"),
            t("is active in {o}")],
        clause=[t("{s_pos} industry is {o}"), t("{s_pos} sector is {o}")],
        app=[t("{o_a} company")],
        premod=[t("the {o} company {x}"), t("{o} company {x}")],
    ),
    "customerOf": Pred(
        "company", "company",
        vp=[t("is a customer of {o}"), t("is a client of {o}"), t("buys from {o}"),
            t("is one of {o_pos} customers")],
        clause=[t("{o} counts {s} among its customers"), t("{o_pos} customers include {s}"),
                t("{o} has {s} as a customer")],
        orel=[t("whose customers include {s}")],
    ),
    "hostedOn": Pred(
        "project service", "platform",
        vp=[t("is hosted on {o}"), t("runs on {o}"), t("lives on {o}"),
            t("is deployed on {o}")],
        clause=[t("{o} hosts {s}")],
        front=[t("Hosted on {o}")],
    ),
}  # fmt: skip


@dataclass
class Combo:
    """Two facts about one subject said in one phrase: "joined Orbit on 2 May 2019"."""

    subj: str
    vp: list[T]
    clause: list[T] = field(default_factory=list)
    app: list[T] = field(default_factory=list)
    front: list[T] = field(default_factory=list)


COMBOS: dict[tuple[str, str], Combo] = {
    ("worksAt", "role"): Combo(
        "person",
        vp=[t("is {o2_a} at {o1}"), t("works as {o2_a} at {o1}"), t("works at {o1} as {o2_a}"),
            t("is employed by {o1} as {o2_a}")],
        clause=[t("At {o1}, {s} works as {o2_a}"), t("{o1} employs {s} as {o2_a}")],
        app=[t("{o2_a} at {o1}")],
        front=[t("As {o2_a} at {o1}")],
    ),
    ("worksAt", "title"): Combo(
        "person",
        vp=[t("is {o2_t} at {o1}"), t("serves as {o2} at {o1}"), t("is {o1_pos} {o2_u}")],
        clause=[t("{o1_pos} {o2_u} is {s}")],
        app=[t("{o2} at {o1}"), t("{o1_pos} {o2_u}")],
        front=[t("As {o2_t} at {o1}")],
    ),
    ("worksAt", "joinedOn"): Combo(
        "person",
        vp=[t("joined {o1} on {o2}"), t("has worked at {o1} since {o2}"),
            t("has been with {o1} since {o2}"), t("started at {o1} on {o2}")],
        clause=[t("On {o2}, {s} joined {o1}"), t("{s_pos} first day at {o1} was {o2}"),
                t("{o1} hired {s} on {o2}")],
    ),
    ("memberOf", "joinedOn"): Combo(
        "person",
        vp=[t("joined {o1} on {o2}"), t("has been on {o1} since {o2}"),
            t("has been a member of {o1} since {o2}")],
        clause=[t("On {o2}, {s} joined {o1}"), t("{s_pos} first day on {o1} was {o2}")],
    ),
    ("foundedBy", "foundedIn"): Combo(
        "company",
        vp=[t("was founded by {o1} in {o2}"), t("was started by {o1} in {o2}"),
            t("was set up by {o1} in {o2}")],
        clause=[t("{o1} founded {s} in {o2}"), t("In {o2}, {o1} founded {s}"),
                t("{o1} started {s} back in {o2}")],
        app=[t("founded by {o1} in {o2}")],
        front=[t("Founded by {o1} in {o2}")],
    ),
    ("version", "releasedOn"): Combo(
        "project",
        vp=[t("shipped version {o1} on {o2}"), t("released version {o1} on {o2}")],
        clause=[t("{s} {o1} was released on {o2}", named=True),
                t("Version {o1} of {s} came out on {o2}"),
                t("{s} version {o1} shipped on {o2}", named=True)],
    ),
    ("bornIn", "livesIn"): Combo(
        "person",
        vp=[t("was born in {o1} but now lives in {o2}"), t("was born in {o1} and lives in {o2}"),
            t("is originally from {o1} but lives in {o2}")],
    ),
    ("basedIn", "hasOfficeIn"): Combo(
        "company",
        vp=[t("is based in {o1}, with an office in {o2}"),
            t("is headquartered in {o1} but also has an office in {o2}")],
        clause=[t("{s} has its headquarters in {o1} and an office in {o2}")],
    ),
    ("teamSize", "basedIn"): Combo(
        "team", vp=[t("is {o1_a}-person team based in {o2}")],
        app=[t("{o1_a}-person team based in {o2}")],
    ),
    ("employeeCount", "basedIn"): Combo(
        "company", vp=[t("is {o1_a}-person company based in {o2}")],
        app=[t("{o1_a}-person company based in {o2}")],
    ),
    ("industry", "basedIn"): Combo(
        "company", vp=[t("is {o1_a} company based in {o2}")],
        app=[t("{o1_a} company based in {o2}"), t("{o2_a}-based {o1} company")],
    ),
    ("industry", "foundedIn"): Combo(
        "company", vp=[t("is {o1_a} company founded in {o2}")],
        app=[t("{o1_a} company founded in {o2}")],
    ),
    ("role", "specialisesIn"): Combo(
        "person",
        vp=[t("is {o1_a} who specialises in {o2}"), t("is {o1_a} specialising in {o2}"),
            t("works as {o1_a} with a focus on {o2}")],
        app=[t("{o1_a} specialising in {o2}")],
    ),
    ("role", "yearsOfExperience"): Combo(
        "person", vp=[t("is {o1_a} with {o2} years of experience")],
        app=[t("{o1_a} with {o2} years of experience")],
        front=[t("{o1_a} with {o2} years of experience")],
    ),
    ("createdBy", "primaryLanguage"): Combo(
        "project",
        vp=[t("is {o2_a} project created by {o1}"), t("was written in {o2} by {o1}")],
        app=[t("{o2_a} project created by {o1}")],
    ),
    ("budget", "deadline"): Combo(
        "project",
        vp=[t("has a budget of {o1} and a deadline of {o2}"),
            t("must be delivered by {o2} on a budget of {o1}")],
        clause=[t("{s} has {o1} to spend and must ship by {o2}")],
    ),
    ("licence", "hostedOn"): Combo(
        "project", vp=[t("is {o1_a}-licensed project hosted on {o2}")],
        app=[t("{o1_a}-licensed project hosted on {o2}")],
    ),
}  # fmt: skip

ANAPHORS = {
    "company": ["the company", "the firm"],
    "team": ["the team"],
    "project": ["the project"],
    "service": ["the service"],
}
PRONOUNS = {  # subject, object, possessive
    "she": ("she", "her", "her"),
    "he": ("he", "him", "his"),
    "it": ("it", "it", "its"),
}
IRREGULAR_PAST = {"wrote", "spoke", "gave", "came", "built", "put", "drafted", "took", "made"}
_FORMATTER = string.Formatter()


def _fields(text: str) -> list[str]:
    return [name for _, name, _, _ in _FORMATTER.parse(text) if name is not None]


# --- small language helpers ------------------------------------------------------------------


def indefinite(phrase: str) -> str:
    """'a' or 'an' + phrase, by sound: an MIT-licensed, a UX researcher, an iOS developer."""
    word = phrase.split()[0].split("-")[0]
    if word[0].isdigit():  # an 8-person team, an 11-person team, an 18,000-person company
        lead = word.split(",")[0]
        vowel_sound = lead.startswith("8") or lead in ("11", "18")
    elif len(word) > 1 and word.isupper():
        vowel_sound = word[0] in "AEFHILMNORSX"
    else:
        lower = word.lower()
        vowel_sound = lower[0] in "aeiou" and not lower.startswith(("uni", "use", "eu", "one"))
    return ("an " if vowel_sound else "a ") + phrase


def join_list(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def possessive(np: str, entity: Entity | None = None) -> str:
    """Ana's, Chris's, the Atlas team's, but Nimbus Systems' (a plural-looking name)."""
    if entity is not None and entity.kind != "person" and np.endswith("s"):
        return np + "'"
    return np + "'s"


def _vp_aux(vp: str) -> str | None:
    """The auxiliary a VP starts with ('is', 'has', ...), or None for a plain lexical verb."""
    words = vp.split()
    if words[0] in ("is", "was", "are", "were", "can", "cannot", "must", "would"):
        return words[0]
    if (
        words[0] in ("has", "have")
        and len(words) > 1
        and (
            words[1] in ("been", "given", "taken", "grown", "built", "never")
            or words[1].endswith("ed")
        )
    ):
        return words[0]
    return None


def subject_led(template: str) -> bool:
    """Whether {s} is the grammatical subject: "{s} uses ...", "Outside work, {s} enjoys ..."."""
    return template.startswith(("{s} ", "{s_pos} ")) or bool(re.search(r", \{s\} [a-z]", template))


def add_also(vp: str) -> str:
    aux = _vp_aux(vp)
    if aux == "cannot":
        return vp
    if aux:
        return vp.replace(aux, aux + " also", 1)
    return "also " + vp


def so_does(vp: str) -> str:
    """The auxiliary for 'and so does Ravi' after this VP."""
    aux = _vp_aux(vp)
    if aux in ("is", "was", "has", "can", "must", "would"):  # not "have": subjects are singular
        return aux
    first = vp.split()[0]
    return "did" if first.endswith("ed") or first in IRREGULAR_PAST else "does"


# What may follow "As the lead of X, ..." or "With ten years of experience, ...": things one
# does, not background such as a birthplace or a founding year.
_ACTIVITIES = frozenset({
    "uses", "prefers", "dislikes", "recommends", "maintains", "leads", "manages", "mentors",
    "specialisesIn", "knows", "collaboratesWith", "contributesTo", "onCallFor", "favouriteTool",
    "primaryLanguage", "wrote", "presentedAt", "reportsTo", "sponsors", "hasOfficeIn",
    "migratedTo", "deprecated", "dependsOn", "customerOf",
})  # fmt: skip
_PREPOSITIONS = {"in", "on", "at", "to", "for", "with", "from", "of", "by"}
_NEGATIVE = re.compile(r"\b(not|never|no|can't|cannot)\b")
_ADVERBS = {"always", "often", "regularly", "mainly", "now", "generally"}
_PLURAL_FIRST = {"is": "are", "was": "were", "has": "have", "does": "do"}


def pluralise_vp(template: str) -> str | None:
    """'uses {o}' -> 'use {o}'; None where the VP cannot simply agree with a plural subject."""
    words = template.split()
    blocked = {"a", "an", "the", "one", "its", "{o_a}", "{o_t}", "{o_pos}", "{alum}"}
    if any(word in blocked for word in words) or "{o_a}" in template or "{alum}" in template:
        return None
    if "{o_pos}" in template or "{pp}" in template:
        return None
    verb = 1 if words[0] in _ADVERBS else 0
    first = words[verb]
    if first == "focuses":
        words[verb] = "focus"
    elif first in _PLURAL_FIRST:
        words[verb] = _PLURAL_FIRST[first]
    elif first.endswith("ed") or first in IRREGULAR_PAST or first in ("can", "must", "would"):
        pass
    elif first.endswith(("sses", "shes", "ches", "xes", "zes")):
        words[verb] = first[:-2]
    elif first.endswith("ies"):
        words[verb] = first[:-3] + "y"
    elif first.endswith("s"):
        words[verb] = first[:-1]
    else:
        return None
    return " ".join(words)


def date_forms(value: str) -> list[str]:
    year, month, day = (int(part) for part in value.split("-"))
    name = MONTHS[month - 1]
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return [f"{day} {name} {year}", f"{name} {day}, {year}", value,
            f"the {day}{suffix} of {name} {year}"]  # fmt: skip


def number_forms(value: str) -> list[str]:
    number = int(value)
    if number < 10:  # house style: small numbers in words
        return [NUMBER_WORDS[number]]
    forms = [f"{number:,}"]
    if number in NUMBER_WORDS:
        forms.append(NUMBER_WORDS[number])
    return forms


def money_forms(value: str) -> list[str]:
    amount_text, currency = value.split()
    amount = int(amount_text)
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}[currency]
    word = {"USD": "US dollars", "EUR": "euros", "GBP": "pounds"}[currency]
    forms = [f"{symbol}{amount:,}", f"{amount:,} {word}", f"{currency} {amount:,}"]
    if amount >= 1_000_000 and amount % 100_000 == 0:
        millions = f"{amount / 1_000_000:g}"
        forms += [f"{symbol}{millions} million", f"{millions} million {word}"]
    return forms


# --- plans -----------------------------------------------------------------------------------


@dataclass
class Group:
    """Facts about one subject said together: one predicate (maybe several objects) or a combo."""

    subject: Entity
    preds: tuple[str, ...]
    objects: tuple[Entity, ...]
    children: list[Group] = field(default_factory=list)  # facts about objects[0]

    @property
    def combo(self) -> bool:
        return len(self.preds) == 2

    def triples(self) -> list[tuple[Entity, str, Entity]]:
        if self.combo:
            own = [(self.subject, p, o) for p, o in zip(self.preds, self.objects, strict=True)]
        else:
            own = [(self.subject, self.preds[0], o) for o in self.objects]
        return own + [triple for child in self.children for triple in child.triples()]


@dataclass
class Tree:
    """Facts around one root entity; objects may carry facts of their own (chains)."""

    root: Entity
    groups: list[Group]

    def triples(self) -> list[tuple[Entity, str, Entity]]:
        return [triple for group in self.groups for triple in group.triples()]


@dataclass
class Shared:
    """Several subjects with the same facts: "Ana and Ravi both use Vim"."""

    subjects: list[Entity]
    facts: list[tuple[str, tuple[Entity, ...]]]

    def triples(self) -> list[tuple[Entity, str, Entity]]:
        return [(s, p, o) for s in self.subjects for p, objs in self.facts for o in objs]


@dataclass
class Parallel:
    """One fact each about several subjects: "Ana prefers Rust, while Ravi prefers Go"."""

    groups: list[Group]

    def triples(self) -> list[tuple[Entity, str, Entity]]:
        return [triple for group in self.groups for triple in group.triples()]


Plan = Tree | Shared | Parallel


class Planner:
    """Samples triple sets: which facts, about which entities, in which shape."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pred_use: Counter[str] = Counter()
        self.entity_use: Counter[str] = Counter()
        self.single_queue: list[str] = []

    # entity sampling: least-used first, so the pools are spread evenly.
    def entity(self, kind: str, taken: set[str]) -> Entity:
        rng = self.rng
        if kind in LITERAL_KINDS or kind == "version":
            return self.literal(kind)
        pool = [e for e in POOLS[kind] if e.name not in taken and not self._clash(e, taken)]
        sample = rng.sample(pool, min(6, len(pool)))
        choice = min(sample, key=lambda e: self.entity_use[e.name])
        self.entity_use[choice.name] += 1
        taken.add(choice.name)
        return choice

    @staticmethod
    def _clash(entity: Entity, taken: set[str]) -> bool:
        # "Ana" and "Ana Souza" in one text would make pronouns and names ambiguous.
        if entity.kind != "person":
            return False
        first = entity.name.split()[0]
        return any(name.split()[0] == first for name in taken)

    def literal(self, kind: str) -> Entity:
        rng = self.rng
        if kind in ("date", "future_date"):
            year = rng.randint(2008, 2024) if kind == "date" else rng.randint(2025, 2027)
            value = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            return Entity(value, "date")
        if kind == "year":
            return Entity(str(rng.randint(1987, 2023)), "year")
        if kind == "version":
            major = rng.choice([0, 1, 1, 2, 2, 3, 4, 5, 7, 12])
            return Entity(f"{major}.{rng.randint(0, 19)}.{rng.randint(0, 9)}", "version")
        raise ValueError(kind)

    def number(self, pred: str) -> Entity:
        rng = self.rng
        if pred == "teamSize":
            value = rng.choice([rng.randint(3, 20), rng.randint(3, 12), rng.choice([25, 30, 40])])
        elif pred == "yearsOfExperience":
            value = rng.randint(2, 25)
        else:
            value = rng.choice([rng.randint(8, 95), rng.randint(10, 99) * 10,
                                rng.randint(11, 140) * 100, rng.choice([40, 50])])  # fmt: skip
        return Entity(str(value), "number")

    def money(self) -> Entity:
        rng = self.rng
        amount = rng.choice([rng.randint(2, 95) * 5_000, rng.randint(1, 40) * 100_000])
        return Entity(f"{amount} {rng.choice(['USD', 'EUR', 'GBP', 'USD'])}", "money")

    def objects_for(
        self, pred: str, count: int, taken: set[str], subject_kind: str = "person"
    ) -> tuple[Entity, ...]:
        kinds = P[pred].objects
        if pred in ("teamSize", "employeeCount", "yearsOfExperience"):
            return (self.number(pred),)
        if pred == "budget":
            return (self.money(),)
        kind = self.rng.choice(kinds)
        if kind == "tool" and subject_kind != "person":
            kind = "infra"
        return tuple(self.entity(kind, taken) for _ in range(count))

    def pick_pred(self, subject_kind: str, exclude: Iterable[str] = ()) -> str | None:
        options = [
            name
            for name, pred in P.items()
            if subject_kind in pred.subjects and name not in exclude
        ]
        if not options:
            return None
        weights = [1.0 / (1 + self.pred_use[name]) ** 2 for name in options]
        return self.rng.choices(options, weights)[0]

    def group(self, subject: Entity, size: int, taken: set[str], exclude: set[str]) -> Group | None:
        """A group stating `size` facts about `subject` (a list, a combo or one fact)."""
        rng = self.rng
        if size == 2 and rng.random() < 0.45:
            combos = [
                key
                for key, combo in COMBOS.items()
                if combo.subj == subject.kind and not exclude & set(key)
            ]
            if combos:
                key = rng.choice(combos)
                objects = []
                for pred in key:
                    objects.extend(self.objects_for(pred, 1, taken, subject.kind))
                for pred in key:
                    self.pred_use[pred] += 1
                return Group(subject, key, tuple(objects))
        for _ in range(10):
            pred = self.pick_pred(subject.kind, exclude)
            if pred is None:
                return None
            if size > 1 and not P[pred].multi:
                continue
            if subject.kind == "team" and pred == "collaboratesWith":
                objects = tuple(self.entity("team", taken) for _ in range(size))
            elif pred == "collaboratesWith":
                objects = tuple(self.entity("person", taken) for _ in range(size))
            else:
                objects = self.objects_for(pred, size, taken, subject.kind)
            if len({o.kind for o in objects}) > 1:
                continue
            self.pred_use[pred] += 1
            return Group(subject, (pred,), objects)
        return None

    def tree(self, size: int) -> Tree | None:
        rng = self.rng
        kind = rng.choices(
            ["person", "company", "team", "project", "service"], [52, 16, 13, 14, 5]
        )[0]
        taken: set[str] = set()
        root = self.entity(kind, taken)
        groups: list[Group] = []
        used: dict[str, set[str]] = {root.name: set()}
        remaining = size
        while remaining:
            hosts = [
                g
                for g in groups
                if not g.combo
                and len(g.objects) == 1
                and g.objects[0].kind in SUBJECT_KINDS
                and len(g.children) < 2
            ]
            if hosts and rng.random() < 0.4:
                host = rng.choice(hosts)
                subject = host.objects[0]
                chunk = 1 if remaining == 1 or rng.random() < 0.75 else 2
                child = self.group(subject, chunk, taken, used.setdefault(subject.name, set()))
                if child is None:
                    return None
                self._forbid(used, child, root)
                host.children.append(child)
            else:
                chunk = 1
                if remaining >= 2 and rng.random() < 0.4:
                    chunk = rng.choice([2, 2, 3]) if remaining >= 3 else 2
                group = self.group(root, chunk, taken, used[root.name])
                if group is None:
                    return None
                self._forbid(used, group, root)
                groups.append(group)
            remaining = size - sum(len(g.triples()) for g in groups)
            if remaining < 0:
                return None
        # Lists read best at the end of a sentence.
        groups.sort(key=lambda g: len(g.objects) > 1 and not g.combo)
        return Tree(root, groups)

    @staticmethod
    def _forbid(used: dict[str, set[str]], group: Group, root: Entity) -> None:
        exclude = used.setdefault(group.subject.name, set())
        exclude.update(group.preds)
        # A person has one employer, birthplace, role, ... in these examples.
        related = {
            "worksAt": {"worksAt"}, "livesIn": {"livesIn"}, "bornIn": {"bornIn"},
            "role": {"role"}, "title": {"title"}, "prefers": {"dislikes"},
            "dislikes": {"prefers"}, "manages": {"reportsTo"}, "reportsTo": {"manages"},
            "basedIn": {"hasOfficeIn"}, "hasOfficeIn": {"basedIn"},
        }  # fmt: skip
        for pred in group.preds:
            exclude.update(related.get(pred, ()))

    def backref_tree(self) -> Tree | None:
        """Facts that point back at an entity already named: "Orbit ... its billing service"."""
        rng = self.rng
        taken: set[str] = set()
        person = self.entity("person", taken)
        if rng.random() < 0.5:
            company = self.entity("company", taken)
            service = self.entity(rng.choice(["service", "project"]), taken)
            pred = rng.choice(["maintains", "leads", "onCallFor", "contributesTo"])
            if service.kind == "project" and pred == "onCallFor":
                pred = "maintains"
            if service.kind == "service" and pred in ("contributesTo", "leads"):
                pred = "maintains"
            work = Group(person, ("worksAt",), (company,))
            job = Group(person, (pred,), (service,), [Group(service, ("ownedBy",), (company,))])
            for name in ("worksAt", pred, "ownedBy"):
                self.pred_use[name] += 1
            return Tree(person, [work, job])
        boss = self.entity("person", taken)
        if boss.pronoun == person.pronoun:
            return None
        first = rng.choice(["reportsTo", "collaboratesWith"])
        second = rng.choice(["mentors", "manages"] if first == "reportsTo" else ["mentors"])
        for name in (first, second):
            self.pred_use[name] += 1
        return Tree(person, [Group(person, (first,), (boss,), [Group(boss, (second,), (person,))])])

    def shared(self, size: int) -> Shared | None:
        rng = self.rng
        shapes = {2: [(2, [1])], 3: [(3, [1])], 4: [(2, [1, 1]), (2, [2])]}.get(size)
        if not shapes:
            return None
        count, object_counts = rng.choice(shapes)
        kind = rng.choices(["person", "company", "team"], [75, 13, 12])[0]
        taken: set[str] = set()
        subjects = [self.entity(kind, taken) for _ in range(count)]
        facts = []
        exclude: set[str] = {"collaboratesWith", "reportsTo", "manages", "mentors", "foundedBy"}
        for objects in object_counts:
            for _ in range(10):
                pred = self.pick_pred(kind, exclude)
                if pred is None:
                    return None
                if objects > 1 and not P[pred].multi:
                    continue
                if not any(pluralise_vp(tpl.text) for tpl in P[pred].vp):
                    continue
                if pred in ("role", "title", "teamSize", "employeeCount", "favouriteTool"):
                    continue
                facts.append((pred, self.objects_for(pred, objects, taken, kind)))
                exclude.add(pred)
                self.pred_use[pred] += 1
                break
            else:
                return None
        return Shared(subjects, facts)

    def parallel(self, size: int) -> Parallel | None:
        rng = self.rng
        if size not in (2, 3):
            return None
        kind = rng.choices(["person", "company", "team", "project"], [70, 10, 10, 10])[0]
        taken: set[str] = set()
        same = rng.random() < 0.85
        pred = self.pick_pred(kind, {"collaboratesWith"})
        groups = []
        for _ in range(size):
            subject = self.entity(kind, taken)
            if not same:
                pred = self.pick_pred(kind, {"collaboratesWith"})
            if pred is None:
                return None
            self.pred_use[pred] += 1
            groups.append(Group(subject, (pred,), self.objects_for(pred, 1, taken, kind)))
        if len({g.objects[0].name for g in groups}) < size:
            return None
        return Parallel(groups)

    def plan(self, size: int) -> Plan | None:
        rng = self.rng
        roll = rng.random()
        if size in (2, 3) and roll < 0.12:
            return self.parallel(size)
        if size in (2, 3, 4) and roll < 0.24:
            return self.shared(size)
        if size == 3 and roll < 0.32:
            return self.backref_tree()
        if size == 1:
            return self.single()
        return self.tree(size)

    def single(self) -> Tree | None:
        """One fact; predicates take turns so each is seen alone in many wordings."""
        if not self.single_queue:
            self.single_queue = sorted(P)
            self.rng.shuffle(self.single_queue)
        pred = self.single_queue.pop()
        taken: set[str] = set()
        subject = self.entity(self.rng.choice(P[pred].subjects), taken)
        if subject.kind == "team" and pred == "collaboratesWith":
            objects: tuple[Entity, ...] = (self.entity("team", taken),)
        elif pred == "collaboratesWith":
            objects = (self.entity("person", taken),)
        else:
            objects = self.objects_for(pred, 1, taken, subject.kind)
        self.pred_use[pred] += 1
        return Tree(subject, [Group(subject, (pred,), objects)])


# --- realisation -----------------------------------------------------------------------------


class Unrealisable(Exception):
    """This attempt painted itself into a corner; the caller tries again."""


Getters = dict[str, Callable[[], str]]


class Realiser:
    """Turns one plan into one text; create one per text (it remembers what it has said)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.surfaces: dict[str, str] = {}
        self.mentioned: list[Entity] = []
        self.embedded: set[int] = set()
        self.deferred: list[tuple[Entity, list[Group]]] = []
        # Whether the last clause began with its subject, so "it"/"she" next can mean it.
        self.subject_led = True

    # --- noun phrases ---------------------------------------------------------------------

    def bare(self, entity: Entity) -> str:
        if entity.kind not in LITERAL_KINDS:
            return entity.name
        if entity.name not in self.surfaces:
            forms = {
                "date": date_forms, "number": number_forms, "money": money_forms,
                "year": lambda value: [value],
            }[entity.kind](entity.name)  # fmt: skip
            self.surfaces[entity.name] = self.rng.choice(forms)
        return self.surfaces[entity.name]

    def np(self, entity: Entity) -> str:
        self.mention(entity)
        return ("the " if entity.the else "") + self.bare(entity)

    def mention(self, entity: Entity) -> None:
        if entity not in self.mentioned:
            self.mentioned.append(entity)

    def pronoun_ok(self, entity: Entity) -> bool:
        """Whether he/she/it would clearly mean `entity` given what has been said."""
        if entity not in self.mentioned:
            return False
        if entity.kind == "person":
            return all(
                other == entity or other.pronoun != entity.pronoun
                for other in self.mentioned
                if other.kind == "person"
            )
        # Any other named thing (a tool, a project, a group) could be read as "it".
        others = [e for e in self.mentioned if e.kind in _IT_KINDS]
        return others == [entity]

    def object_np(self, entity: Entity) -> str:
        """An entity in object position: a pronoun when it was named before and is unambiguous."""
        if entity.kind == "person" and self.pronoun_ok(entity) and self.rng.random() < 0.8:
            return PRONOUNS[entity.pronoun][1]
        return self.np(entity)

    def possessive_np(self, entity: Entity) -> str:
        if self.pronoun_ok(entity) and self.rng.random() < 0.8:
            return PRONOUNS[entity.pronoun][2]
        return possessive(self.np(entity), entity)

    # --- template filling -----------------------------------------------------------------

    def fill(self, template: str, getters: Getters) -> str:
        out = []
        for literal, name, _, _ in _FORMATTER.parse(template):
            out.append(literal)
            if name is not None:
                out.append(getters[name]())
        return "".join(out)

    def usable(self, templates: Iterable[T], group: Group, getters: Getters) -> list[T]:
        kinds = {o.kind for o in group.objects}
        many = len(group.objects) > 1 and not group.combo
        found = []
        for tpl in templates:
            if tpl.s and group.subject.kind not in tpl.s:
                continue
            if tpl.o and not kinds <= tpl.o:
                continue
            if (tpl.n == "1" and many) or (tpl.n == "m" and not many):
                continue
            if not set(_fields(tpl.text)) <= getters.keys():
                continue
            found.append(tpl)
        return found

    def templates(self, group: Group, slot: str) -> list[T]:
        spec = COMBOS[group.preds] if group.combo else P[group.preds[0]]
        return getattr(spec, slot, [])

    def subject_getters(self, entity: Entity, ref: str) -> Getters:
        """How to say the subject: by name, pronoun, anaphor ('the company') or short name."""
        subj, _, pos = PRONOUNS[entity.pronoun]
        getters: Getters = {
            "pp": lambda: pos,
            "sub": lambda: subj,
            "noun": lambda: entity.kind,
        }
        if entity.kind == "person":
            getters["alum"] = lambda: "alumna" if entity.pronoun == "she" else "alumnus"
        if ref == "name":
            getters["s"] = lambda: self.np(entity)
            getters["s_pos"] = lambda: possessive(self.np(entity), entity)
        elif ref == "pron":
            getters["s"] = lambda: subj
            getters["s_pos"] = lambda: pos
        elif ref == "short":
            first = entity.name.split()[0]
            getters["s"] = lambda: first
            getters["s_pos"] = lambda: possessive(first)
        else:  # an anaphor such as "the company"
            noun = self.rng.choice(ANAPHORS[entity.kind])
            getters["s"] = lambda: noun
            getters["s_pos"] = lambda: possessive(noun, entity)
        return getters

    def object_getters(self, group: Group, *, embed: bool) -> Getters:
        objs = group.objects
        if group.combo:
            first, second = objs
            getters: Getters = {
                "o1": lambda: self.np(first),
                "o2": lambda: self.np(second),
                "o1_a": lambda: indefinite(self.bare(first)),
                "o2_a": lambda: indefinite(self.bare(second)),
                "o1_pos": lambda: possessive(self.np(first), first),
            }
            if second.kind == "title":
                getters["o2_t"] = lambda: self.title_np(second)
                if second.article == "the":
                    getters["o2_u"] = lambda: second.name
            return getters

        def say_objects() -> str:
            if len(objs) == 1 and embed and group.children:
                return self.described(objs[0], group)
            return join_list([self.object_np(o) for o in objs])

        getters = {"o": say_objects}
        getters["be"] = lambda: "are" if len(objs) > 1 or objs[0].plural else "is"
        if len(objs) == 1:
            only = objs[0]
            if only.kind not in LITERAL_KINDS or only.kind == "number":
                getters["o_a"] = lambda: indefinite(self.bare(only))
            if only.kind not in LITERAL_KINDS | {"version"}:
                getters["o_pos"] = lambda: self.possessive_np(only)
            if only.kind == "title":
                getters["o_t"] = lambda: self.title_np(only)
        return getters

    def title_np(self, title: Entity) -> str:
        self.mention(title)
        if title.article == "the":
            return "the " + title.name
        return indefinite(title.name)

    # --- phrases --------------------------------------------------------------------------

    def vp(self, group: Group, subj: Getters, *, plural: bool = False, embed: bool = True) -> str:
        getters = {**subj, **self.object_getters(group, embed=embed)}
        options = self.usable(self.templates(group, "vp"), group, getters)
        if plural:
            options = [T(text, x.s, x.o, x.n) for x in options if (text := pluralise_vp(x.text))]
        if not options:
            raise Unrealisable(f"no VP for {group.preds}")
        return self.fill(self.rng.choice(options).text, getters)

    def modifier(self, group: Group, entity: Entity, kinds: Sequence[str]) -> tuple[str, str]:
        """A phrase describing `entity` with `group`: ('rel'|'app'|'front', text)."""
        subj = self.subject_getters(entity, "pron")
        getters = {**subj, **self.object_getters(group, embed=False)}
        choices: list[tuple[str, T | None]] = []
        for kind in kinds:
            if kind == "rel":
                choices.append(("rel", None))
                choices += [("rel", tpl) for tpl in self.usable(self.templates(group, "rel"),
                                                                  group, getters)]  # fmt: skip
            else:
                choices += [(kind, tpl) for tpl in self.usable(self.templates(group, kind),
                                                                 group, getters)]  # fmt: skip
        if not choices:
            raise Unrealisable(f"no {kinds} for {group.preds}")
        kind, tpl = self.rng.choice(choices)
        if tpl is None:
            word = "who" if entity.kind == "person" else "which"
            return kind, f"{word} {self.vp(group, subj, embed=False)}"
        return kind, self.fill(tpl.text, getters)

    def described(self, entity: Entity, host: Group) -> str:
        """`entity` with the facts of host.children folded into its noun phrase."""
        self.embedded.add(id(host))
        children = host.children
        rng = self.rng
        premods = [
            c
            for c in children
            if not c.combo
            and len(c.objects) == 1
            and self.usable(self.templates(c, "premod"), c, self.premod_getters(c))
        ]
        rest = list(children)
        head = None
        if premods and rng.random() < 0.45:
            chosen = rng.choice(premods)
            getters = self.premod_getters(chosen)
            tpl = rng.choice(self.usable(self.templates(chosen, "premod"), chosen, getters))
            head = self.fill(tpl.text, getters)
            self.mention(entity)
            rest.remove(chosen)
        if head is None:
            head = self.np(entity)
        if not rest:
            return head
        apps = [c for c in rest if self.templates(c, "app")]
        if len(rest) == 1 and apps and rng.random() < 0.4:
            _, text = self.modifier(rest[0], entity, ["app"])
            return f"{head}, {text},"
        subj = self.subject_getters(entity, "pron")
        word = "who" if entity.kind == "person" else "which"
        if len(rest) == 1 and rng.random() < 0.3:
            _, text = self.modifier(rest[0], entity, ["rel"])
            return f"{head}, {text},"
        vps = [self.vp(child, subj, embed=False) for child in rest]
        return f"{head}, {word} {join_list(vps)},"

    def premod_getters(self, group: Group) -> Getters:
        head = group.subject
        getters = {**self.object_getters(group, embed=False)}
        getters["x"] = lambda: head.name
        getters["the"] = lambda: "the " if head.the else ""
        return getters

    # --- clauses --------------------------------------------------------------------------

    def clause(
        self,
        subject: Entity,
        groups: list[Group],
        ref: str,
        *,
        also: bool = False,
        forced: tuple[str, str] | None = None,
    ) -> str:
        """One sentence about `subject` stating every fact in `groups` (children may defer)."""
        sentence = self._clause(subject, groups, ref, also=also, forced=forced)
        for group in groups:
            if group.children and id(group) not in self.embedded:
                self.embedded.add(id(group))
                self.deferred.append((group.objects[0], group.children))
        return sentence

    def _clause(
        self,
        subject: Entity,
        groups: list[Group],
        ref: str,
        *,
        also: bool,
        forced: tuple[str, str] | None,
    ) -> str:
        rng = self.rng
        groups = list(groups)
        mod: tuple[str, str] | None = forced
        if mod is None and ref == "name" and len(groups) >= 2 and rng.random() < 0.55:
            candidates = [g for g in groups if not g.children]
            if candidates:
                chosen = rng.choice(candidates)
                kinds = [k for k in ("rel", "app", "front") if self.templates(chosen, k)]
                if not chosen.combo:
                    kinds.append("rel")
                if kinds:
                    groups.remove(chosen)
                    self.mention(subject)
                    mod = self.modifier(chosen, subject, sorted(set(kinds)))
        subj = self.subject_getters(subject, ref)
        say_subject = subj["s"]

        def subject_with_mod() -> str:
            text = say_subject()
            if mod and mod[0] in ("rel", "app"):
                return f"{text}, {mod[1]},"
            return text

        subj = {**subj, "s": subject_with_mod}
        use_clause = len(groups) == 1 and not also and rng.random() < 0.4
        if len(groups) == 2 and mod is None and ref == "name" and rng.random() < 0.2:
            sentence = self.clause_template(groups[0], subj, mod, ref)
            if sentence:
                ref = (
                    "pron"
                    if self.pronoun_ok(subject) and self.subject_led
                    else self.reference(subject, same_subject=True)
                )
                again = self.subject_getters(subject, ref)
                return self.finish(f"{sentence}, and {again['s']()} {self.vp(groups[1], again)}")
        if use_clause:
            sentence = self.clause_template(groups[0], subj, mod, ref)
            if sentence:
                if mod and mod[0] == "front":
                    sentence = f"{mod[1]}, {sentence}"
                return self.finish(sentence)
        self.subject_led = True
        # Only the last phrase may describe its object ("works at Orbit, which is based in
        # Berlin"): mid-sentence, "..., which is a client of X, and was taken over" is ambiguous.
        last = len(groups) - 1
        vps = [self.vp(group, subj, embed=index == last) for index, group in enumerate(groups)]
        described = vps[last] if id(groups[last]) in self.embedded else None
        # A phrase with its own "and" (a list, a combo) goes last; two of them would blur
        # where each ends: "knows Go and Rust and prefers Vim and Emacs".
        compound = [vp for vp in vps if " and " in vp or " but " in vp]
        if len(vps) > 1 and len(compound) > 1:
            raise Unrealisable("two compound phrases in one sentence")
        vps = [vp for vp in vps if vp not in compound] + compound
        if described is not None and vps[-1] != described:
            raise Unrealisable("a described object in mid-sentence")
        if also:
            vps[0] = add_also(vps[0])
        circumstantial = mod and mod[0] == "front" and mod[1].startswith(("As ", "With "))
        main_preds = {pred for group in groups for pred in group.preds}
        if circumstantial and not main_preds <= _ACTIVITIES:
            # "With ten years of experience, Thao was born in Madrid" reads as cause and effect.
            raise Unrealisable("circumstantial opener before a background fact")
        sentence = f"{subj['s']()} {join_list(vps)}"
        if mod and mod[0] == "front":
            sentence = f"{mod[1]}, {sentence}"
        return self.finish(sentence)

    def clause_template(
        self, group: Group, subj: Getters, mod: tuple[str, str] | None, ref: str
    ) -> str | None:
        getters = {**subj, **self.object_getters(group, embed=True)}
        options = []
        for tpl in self.usable(self.templates(group, "clause"), group, getters):
            if ref == "pron" and (tpl.named or not subject_led(tpl.text)):
                continue
            if mod and "{s} and" in tpl.text:  # "Ana, who ..., and Ravi collaborate"
                continue
            if mod and mod[0] == "front" and not tpl.text.startswith("{s}"):
                continue
            at_edge = tpl.text.startswith("{s}") or tpl.text.endswith("{s}")
            if mod and mod[0] in ("rel", "app") and not at_edge:
                continue
            options.append(tpl)
        if not options:
            return None
        tpl = self.rng.choice(options)
        self.subject_led = subject_led(tpl.text)
        return self.fill(tpl.text, getters)

    def finish(self, sentence: str) -> str:
        sentence = sentence.strip()
        sentence = re.sub(r",\s*,", ",", sentence)
        sentence = re.sub(r",\s*$", "", sentence)
        sentence = sentence[0].upper() + sentence[1:]
        return sentence + "."

    # --- plans ----------------------------------------------------------------------------

    def reference(self, entity: Entity, *, same_subject: bool) -> str:
        """How a later sentence refers to an entity named earlier."""
        rng = self.rng
        options = {"name": 1}
        if self.pronoun_ok(entity) and (self.subject_led or not same_subject):
            options["pron"] = 3 if same_subject else 1
        alike = [e for e in self.mentioned if e.kind == entity.kind and e != entity]
        if entity.kind in ANAPHORS and not alike:
            options["anaphor"] = 1
        if entity.kind == "person" and " " in entity.name:
            options["short"] = 2
        return rng.choices(list(options), list(options.values()))[0]

    def tree(self, plan: Tree) -> str:
        rng = self.rng
        root, groups = plan.root, plan.groups
        count = len(plan.triples())
        sentences: list[str] = []
        only = groups[0] if len(groups) == 1 else None
        object_head = (
            only is not None
            and not only.combo
            and len(only.objects) == 1
            and only.children
            and self.usable_orel(only)
        )
        if object_head and rng.random() < 0.35:
            assert only is not None
            getters = {**self.subject_getters(root, "name"), "noun": lambda: root.kind}
            tpl = rng.choice(self.usable_orel(only))
            target = only.objects[0]
            self.mention(target)
            orel = self.fill(tpl.text, getters)
            self.embedded.add(id(only))
            sentences.append(self.clause(target, only.children, "name", forced=("rel", orel)))
        elif len(groups) >= 2 and (count >= 4 or rng.random() < 0.3):
            cut = rng.randint(1, len(groups) - 1)
            sentences.append(self.clause(root, groups[:cut], "name"))
            if rng.random() < 0.5:
                sentences += self.flush_deferred()
            ref = self.reference(root, same_subject=True)
            sentences.append(self.clause(root, groups[cut:], ref, also=rng.random() < 0.4))
        else:
            sentences.append(self.clause(root, groups, "name"))
        sentences += self.flush_deferred()
        return " ".join(sentences)

    def usable_orel(self, group: Group) -> list[T]:
        getters = {**self.subject_getters(group.subject, "name"), "noun": lambda: ""}
        return self.usable(self.templates(group, "orel"), group, getters)

    def flush_deferred(self) -> list[str]:
        sentences = []
        while self.deferred:
            entity, children = self.deferred.pop(0)
            ref = self.reference(entity, same_subject=False)
            sentences.append(self.clause(entity, children, ref))
        return sentences

    def shared(self, plan: Shared) -> str:
        rng = self.rng
        subjects, facts = plan.subjects, plan.facts
        groups = [Group(subjects[0], (pred,), objs) for pred, objs in facts]
        names = [self.np(s) for s in subjects]
        together = join_list(names)
        plural: Getters = {"pp": lambda: "their", "sub": lambda: "they", "noun": lambda: ""}
        quantifier = "both" if len(subjects) == 2 else "all"
        if len(groups) == 1:
            group = groups[0]
            style = rng.choice(["plural", "plural", "both", "so", "as", "passive"])
            if style == "passive":
                getters = {**self.object_getters(group, embed=False)}
                options = [
                    tpl
                    for tpl in self.usable(self.templates(group, "clause"), group, getters)
                    # "{s}" last or before "among"/"as", so no verb has to agree with it.
                    if re.search(r".\{s\}($| among | as )", tpl.text)
                    and not {"s_pos", "pp", "sub"} & set(_fields(tpl.text))
                ]
                if options:
                    prefix = "both " if len(subjects) == 2 and rng.random() < 0.5 else ""
                    getters["s"] = lambda: prefix + together
                    return self.finish(self.fill(rng.choice(options).text, getters))
                style = "plural"
            first = self.vp(group, self.subject_getters(subjects[0], "name"))
            # "can't stand X, and so does Ravi" is wrong; negatives take the plural form.
            if style in ("so", "as") and len(subjects) == 2 and not _NEGATIVE.search(first):
                aux = so_does(first)
                if style == "so":
                    return self.finish(f"{names[0]} {first}, and so {aux} {names[1]}")
                return self.finish(f"{names[0]} {first}, as {aux} {names[1]}")
            phrase = self.vp(group, plural, plural=True)
            if style == "both" and len(subjects) == 2:
                return self.finish(f"Both {names[0]} and {names[1]} {phrase}")
            if rng.random() < 0.5:
                phrase = add_quantifier(phrase, quantifier)
            return self.finish(f"{together} {phrase}")
        phrases = [self.vp(group, plural, plural=True) for group in groups]
        if rng.random() < 0.5:
            return self.finish(f"{together} {join_list(phrases)}")
        second = rng.choice([add_quantifier(phrases[1], quantifier), add_also(phrases[1])])
        return f"{self.finish(together + ' ' + phrases[0])} {self.finish('they ' + second)}"

    def parallel(self, plan: Parallel) -> str:
        rng = self.rng
        groups = plan.groups
        same = len({g.preds for g in groups}) == 1
        if same and rng.random() < 0.3:
            gapped = self.gapped(groups)
            if gapped:
                return gapped
        clauses = []
        for group in groups:
            subj = self.subject_getters(group.subject, "name")
            clauses.append(f"{subj['s']()} {self.vp(group, subj)}")
        if len(clauses) == 3:
            if same and rng.random() < 0.5:
                return self.finish(f"{clauses[0]}, {clauses[1]} and {clauses[2]}")
            return " ".join(self.finish(c) for c in clauses)
        if same:
            joiner = rng.choice([", while ", ", whereas ", "; ", ", and ", ". ", ", but "])
        else:  # unrelated facts: no contrast implied
            joiner = rng.choice(["; ", ", and ", ". "])
        if joiner == ". ":
            return f"{self.finish(clauses[0])} {self.finish(clauses[1])}"
        return self.finish(clauses[0] + joiner + clauses[1])

    def gapped(self, groups: list[Group]) -> str | None:
        """'Ana works at Orbit, and Ravi at Nimbus.': the verb is said once."""
        first = groups[0]
        getters = {**self.subject_getters(first.subject, "name"),
                   **self.object_getters(first, embed=False)}  # fmt: skip
        # Only "<verb> {o}" or "<verb> <preposition> {o}": the preposition stays in each part.
        options = [
            tpl.text.split() for tpl in self.usable(self.templates(first, "vp"), first, getters)
            if _fields(tpl.text) == ["o"] and tpl.text.endswith(" {o}")
            and tpl.text.split()[0] not in ("is", "was", "has")
            and (len(tpl.text.split()) == 2
                 or (len(tpl.text.split()) == 3 and tpl.text.split()[1] in _PREPOSITIONS))
        ]  # fmt: skip
        if not options:
            return None
        words = self.rng.choice(options)
        verb, kept = words[0], " ".join(words[1:-1] + [""])
        parts = [f"{self.np(first.subject)} {verb} {kept}{self.np(first.objects[0])}"]
        for group in groups[1:]:
            obj = group.objects[0]
            if obj.kind != first.objects[0].kind:
                return None
            parts.append(f"{self.np(group.subject)} {kept}{self.np(obj)}")
        if len(parts) == 2:
            return self.finish(f"{parts[0]}, and {parts[1]}")
        return self.finish(f"{parts[0]}, {parts[1]} and {parts[2]}")

    def realise(self, plan: Plan) -> str:
        if isinstance(plan, Tree):
            return self.tree(plan)
        if isinstance(plan, Shared):
            return self.shared(plan)
        return self.parallel(plan)


def add_quantifier(vp: str, word: str) -> str:
    """'use Vim' -> 'both use Vim'; 'are based in Lisbon' -> 'are both based in Lisbon'."""
    aux = _vp_aux(vp) or (vp.split()[0] if vp.split()[0] in ("are", "were") else None)
    if aux:
        return vp.replace(aux, f"{aux} {word}", 1)
    return f"{word} {vp}"


# --- checking --------------------------------------------------------------------------------

_BAD = re.compile(r"\{|\}|  | ,|,,|\.\.|,\.|\ba an\b|\ban a\b|\bthe the\b")


def check(text: str, plan: Plan, realiser: Realiser) -> None:
    """Raise Unrealisable unless `text` names every entity and reads as a finished sentence."""
    if _BAD.search(text) or not text[0].isupper() or not text.endswith("."):
        raise Unrealisable(f"malformed: {text}")
    for entity in {e for triple in plan.triples() for e in (triple[0], triple[2])}:
        name = entity.name
        if name[0].islower() and re.search(
            rf"(^|[.] ){re.escape(name[0].upper() + name[1:])}\b", text
        ):
            raise Unrealisable(f"capitalised {name}: {text}")
    _check_repetition(text, plan)
    for subject, _, obj in plan.triples():
        for entity in (subject, obj):
            if entity.kind in LITERAL_KINDS:
                if realiser.surfaces.get(entity.name, "\0") not in text:
                    raise Unrealisable(f"unsaid literal {entity.name}: {text}")
            elif entity.name not in text:
                raise Unrealisable(f"unsaid entity {entity.name}: {text}")


def _check_repetition(text: str, plan: Plan) -> None:
    """Reject 'is a 680-person company and is a robotics company': a word said twice."""
    names = sorted({e.name for t in plan.triples() for e in (t[0], t[2])}, key=len, reverse=True)
    for sentence in text.split(". "):
        for name in names:
            sentence = sentence.replace(name, " ")
        words = [w for w in re.findall(r"[a-z]+", sentence.lower()) if len(w) >= 5]
        repeated = [w for w, n in Counter(words).items() if n > 1 and w not in _REPEATABLE]
        if repeated:
            raise Unrealisable(f"repeats {repeated}: {text}")


_REPEATABLE = {"their", "which", "whose"}


def triples_json(plan: Plan) -> list[list[str]]:
    seen: list[list[str]] = []
    for subject, pred, obj in plan.triples():
        row = [subject.name, pred, obj.name]
        if row not in seen:
            seen.append(row)
    return seen


# --- the corpus ------------------------------------------------------------------------------


def generate(seed: int = SEED) -> list[dict[str, object]]:
    """Every record of the corpus, in order; deterministic for a given seed."""
    rng = random.Random(seed)
    planner = Planner(rng)
    quotas = dict(SIZE_QUOTAS)
    records: list[dict[str, object]] = []
    texts: set[str] = set()
    triple_sets: set[str] = set()
    entry = 0
    while any(quotas.values()):
        size = rng.choices(list(quotas), [max(q, 0) for q in quotas.values()])[0]
        plan = planner.plan(size)
        if plan is None or len(triples_json(plan)) != size:
            continue
        key = json.dumps(sorted(triples_json(plan)))
        if key in triple_sets:  # one entry per triple set, as in WebNLG
            continue
        wanted = min(rng.choices([1, 2, 3], [35, 40, 25])[0], quotas[size])
        said: list[str] = []
        for _ in range(wanted * 8):
            if len(said) == wanted:
                break
            realiser = Realiser(rng)
            try:
                text = realiser.realise(plan)
                check(text, plan, realiser)
            except Unrealisable:
                continue
            if text not in texts:
                said.append(text)
                texts.add(text)
        if not said:
            continue
        triple_sets.add(key)
        entry += 1
        for text in said:
            records.append({
                "id": f"valence/{len(records) + 1}",
                "entry_id": f"valence/e{entry}",
                "text": text,
                "triples": triples_json(plan),
            })  # fmt: skip
        quotas[size] -= len(said)
    return records


def dumps(records: Iterable[dict[str, object]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def main() -> None:
    records = generate()
    OUTPUT.write_text(dumps(records), encoding="utf-8")
    print(f"Wrote {len(records)} records to {OUTPUT}")


if __name__ == "__main__":
    main()
