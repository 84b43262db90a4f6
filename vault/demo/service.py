"""A realistic, repeatable demo dataset: customers from many cultures and a year of
multi-channel history each.

:func:`plan_demo` is pure: from a customer count, a seed and "now" it describes
every customer and interaction, identically on every run (only ids and nonces
chosen while writing differ). :func:`load_demo` writes such a plan through the
customer and interaction services, one transaction per chunk of customers.

Loading is idempotent for one seed: customers are keyed by the external id
``("shop", "C000001")``, ... and interactions by ``demo-{seed}-{customer}-{n}``,
so a second run finds everything present and adds nothing. A customer whose
external id already exists is reused as it is (whatever seed created it); only
interactions missing so far are recorded for it.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.authorization.context import AccessContext
from vault.customers import CustomerInput, ExternalId
from vault.customers.addresses import PostalAddress
from vault.interactions.service import MAX_BATCH, InteractionInput
from vault.money import exponent
from vault.runtime import Vault
from vault.storage.models import CustomerExternalIdRow, CustomerRow
from vault.types import Channel, CustomerStatus, InteractionType

__all__ = [
    "CHUNK_CUSTOMERS",
    "DEMO_SOURCE",
    "DemoCustomer",
    "DemoSummary",
    "load_demo",
    "plan_customer",
    "plan_demo",
]

DEMO_SOURCE: Final = "shop"
CHUNK_CUSTOMERS = 100
HISTORY_DAYS: Final = 365
_DAY = 86_400
_LIVE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)

Name = tuple[str, str]  # (as written, ASCII transliteration for the e-mail address)


@dataclass(frozen=True, slots=True)
class _Culture:
    locale: str
    weight: int
    currency: str
    price: tuple[int, int]  # typical order value, whole units of the currency
    price_step: int  # prices are multiples of this many whole units
    dial: str  # country calling code
    mobile: str  # national mobile number: digits, "x" = 0-9, "n" = 1-9
    first: tuple[Name, ...]
    last: tuple[Name, ...]
    addresses: tuple[tuple[str, str, str], ...]  # (street, city, postal code)
    chat: tuple[str, ...]


_PERSIAN_FIRST: tuple[Name, ...] = (
    ("زهرا", "zahra"), ("علی", "ali"), ("مریم", "maryam"), ("رضا", "reza"),
    ("فاطمه", "fatemeh"), ("حسین", "hossein"), ("سارا", "sara"), ("امیر", "amir"),
    ("نازنین", "nazanin"), ("کوروش", "kourosh"), ("پریسا", "parisa"), ("مهسا", "mahsa"),
)  # fmt: skip
_PERSIAN_LAST: tuple[Name, ...] = (
    ("محمدی", "mohammadi"), ("حسینی", "hosseini"), ("احمدی", "ahmadi"), ("رضایی", "rezaei"),
    ("کریمی", "karimi"), ("موسوی", "mousavi"), ("جعفری", "jafari"), ("صادقی", "sadeghi"),
    ("تهرانی", "tehrani"), ("شیرازی", "shirazi"),
)  # fmt: skip
_ARABIC_FIRST: tuple[Name, ...] = (
    ("محمد", "mohammed"), ("فاطمة", "fatima"), ("أحمد", "ahmed"), ("عائشة", "aisha"),
    ("عمر", "omar"), ("ليلى", "layla"), ("يوسف", "youssef"), ("نورة", "noura"),
    ("خالد", "khaled"), ("سلمى", "salma"),
)  # fmt: skip
_ARABIC_CHAT = (
    "مرحباً، متى يصل طلبي؟",
    "أريد إرجاع هذا المنتج.",
    "شكراً جزيلاً، تم حل المشكلة!",
)
_ENGLISH_CHAT = (
    "Hi, when will my order arrive?",
    "I'd like to return this item.",
    "Thanks a lot, that solved it!",
)

_CULTURES: tuple[_Culture, ...] = (
    _Culture(
        "fa-IR", 8, "IRR", (400_000, 60_000_000), 10_000, "98", "91nxxxxxxx",
        _PERSIAN_FIRST, _PERSIAN_LAST,
        (("خیابان ولیعصر، پلاک {n}", "تهران", ""), ("خیابان چهارباغ، پلاک {n}", "اصفهان", ""),
         ("بلوار زند، پلاک {n}", "شیراز", "")),
        ("سلام، سفارش من کی می‌رسد؟", "می‌خواهم این کالا را مرجوع کنم.",
         "خیلی ممنون، مشکل حل شد!"),
    ),
    _Culture(
        "th-TH", 7, "THB", (150, 15_000), 10, "66", "8nxxxxxxx",
        (("สมชาย", "somchai"), ("สมหญิง", "somying"), ("ณัฐพล", "nattapon"),
         ("พิมพ์ชนก", "pimchanok"), ("อนันต์", "anan"), ("กัลยา", "kanlaya"), ("วีระ", "weera"),
         ("สุดา", "suda"), ("ธนากร", "thanakorn"), ("ปิยะนุช", "piyanuch")),
        (("ใจดี", "jaidee"), ("ศรีสุข", "srisuk"), ("วงศ์สวัสดิ์", "wongsawat"),
         ("แสงทอง", "saengthong"), ("บุญมา", "boonma"), ("สุขสันต์", "suksan"),
         ("รัตนพันธ์", "rattanaphan")),
        (("{n} ถนนสุขุมวิท", "กรุงเทพมหานคร", "10110"), ("{n} ถนนนิมมานเหมินท์", "เชียงใหม่", "50200")),
        ("สวัสดีครับ สินค้าจะมาถึงเมื่อไหร่ครับ", "ต้องการคืนสินค้าชิ้นนี้ค่ะ",
         "ขอบคุณมากค่ะ แก้ปัญหาได้แล้ว"),
    ),
    _Culture(
        "zh-CN", 8, "CNY", (30, 3_000), 1, "86", "13nxxxxxxxx",
        (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("秀英", "xiuying"), ("敏", "min"),
         ("静", "jing"), ("强", "qiang"), ("磊", "lei"), ("子涵", "zihan"), ("浩然", "haoran")),
        (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
         ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("周", "zhou"), ("吴", "wu")),
        (("朝阳区建国路{n}号", "北京市", ""),
         ("浦东新区世纪大道{n}号", "上海市", ""), ("天河区天河路{n}号", "广州市", "")),
        ("你好，我的订单什么时候到？", "我想退回这件商品。", "非常感谢，问题解决了！"),  # noqa: RUF001 - full-width punctuation is correct here
    ),
    _Culture(
        "ar-SA", 5, "SAR", (20, 2_000), 1, "966", "50xxxxxxx",
        _ARABIC_FIRST,
        (("العتيبي", "alotaibi"), ("الشمري", "alshammari"), ("القحطاني", "alqahtani"),
         ("الغامدي", "alghamdi"), ("الزهراني", "alzahrani"), ("الحربي", "alharbi")),
        (("طريق الملك فهد، مبنى {n}", "الرياض", ""), ("شارع التحلية {n}", "جدة", "")),
        _ARABIC_CHAT,
    ),
    _Culture(
        "ar-EG", 4, "EGP", (100, 20_000), 5, "20", "10xxxxxxxx",
        _ARABIC_FIRST,
        (("حسن", "hassan"), ("إبراهيم", "ibrahim"), ("المصري", "elmasry"),
         ("السيد", "elsayed"), ("عبد الله", "abdallah"), ("منصور", "mansour")),
        (("شارع التحرير {n}", "القاهرة", ""), ("طريق الكورنيش {n}", "الإسكندرية", "")),
        _ARABIC_CHAT,
    ),
    _Culture(
        "ar-KW", 2, "KWD", (2, 150), 1, "965", "99xxxxxx",
        _ARABIC_FIRST,
        (("العنزي", "alenezi"), ("المطيري", "almutairi"), ("العجمي", "alajmi"),
         ("الرشيدي", "alrashidi")),
        (("شارع الخليج العربي، مبنى {n}", "الكويت", ""),),
        _ARABIC_CHAT,
    ),
    _Culture(
        "ja-JP", 6, "JPY", (500, 60_000), 10, "81", "90nxxxxxxx",
        (("陽翔", "haruto"), ("さくら", "sakura"), ("蓮", "ren"), ("結衣", "yui"),
         ("大翔", "hiroto"), ("美咲", "misaki"), ("健太", "kenta"), ("葵", "aoi")),
        (("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"),
         ("伊藤", "ito"), ("渡辺", "watanabe"), ("山本", "yamamoto"), ("中村", "nakamura")),
        (("渋谷区神南1-{n}", "東京都", ""), ("北区梅田2-{n}", "大阪市", "")),
        ("こんにちは、注文はいつ届きますか？", "この商品を返品したいです。",  # noqa: RUF001 - full-width punctuation is correct here
         "ありがとうございます。解決しました！"),  # noqa: RUF001 - full-width punctuation is correct here
    ),
    _Culture(
        "ko-KR", 4, "KRW", (5_000, 600_000), 100, "82", "10nxxxxxxx",
        (("민준", "minjun"), ("서연", "seoyeon"), ("지훈", "jihoon"), ("하은", "haeun"),
         ("도윤", "doyun"), ("지우", "jiwoo")),
        (("김", "kim"), ("이", "lee"), ("박", "park"), ("최", "choi"), ("정", "jung"),
         ("강", "kang")),
        (("강남구 테헤란로 {n}", "서울특별시", ""), ("해운대구 해운대로 {n}", "부산광역시", "")),
        ("안녕하세요, 주문이 언제 도착하나요?", "이 상품을 반품하고 싶어요.",
         "감사합니다, 해결되었어요!"),
    ),
    _Culture(
        "ru-RU", 4, "RUB", (300, 40_000), 10, "7", "9nxxxxxxxx",
        (("Анна", "anna"), ("Дмитрий", "dmitry"), ("Екатерина", "ekaterina"),
         ("Сергей", "sergey"), ("Ольга", "olga"), ("Иван", "ivan"), ("Наталья", "natalya")),
        (("Шевченко", "shevchenko"), ("Черных", "chernykh"), ("Седых", "sedykh"),
         ("Белых", "belykh"), ("Долгих", "dolgikh"), ("Ким", "kim")),
        (("ул. Тверская, д. {n}", "Москва", ""), ("Невский пр., д. {n}", "Санкт-Петербург", "")),
        ("Здравствуйте, когда придёт мой заказ?", "Хочу вернуть этот товар.",
         "Большое спасибо, проблема решена!"),
    ),
    _Culture(
        "hi-IN", 4, "INR", (300, 40_000), 1, "91", "9nxxxxxxxx",
        (("प्रिया", "priya"), ("राहुल", "rahul"), ("अनन्या", "ananya"), ("अर्जुन", "arjun"),
         ("दीपिका", "deepika"), ("विक्रम", "vikram")),
        (("शर्मा", "sharma"), ("पटेल", "patel"), ("गुप्ता", "gupta"), ("सिंह", "singh"),
         ("वर्मा", "verma"), ("रेड्डी", "reddy")),
        (("{n}, महात्मा गांधी मार्ग", "नई दिल्ली", "110001"), ("{n}, मरीन ड्राइव", "मुंबई", "400020")),
        ("नमस्ते, मेरा ऑर्डर कब आएगा?", "मैं यह सामान वापस करना चाहता हूँ।",
         "बहुत धन्यवाद, समस्या हल हो गई!"),
    ),
    _Culture(
        "el-GR", 2, "EUR", (5, 400), 1, "30", "69xxxxxxxx",
        (("Γιώργος", "giorgos"), ("Μαρία", "maria"), ("Νίκος", "nikos"),
         ("Ελένη", "eleni"), ("Δημήτρης", "dimitris"), ("Σοφία", "sofia")),
        (("Οικονόμου", "oikonomou"), ("Γεωργίου", "georgiou"), ("Νικολάου", "nikolaou"),
         ("Ιωάννου", "ioannou"), ("Αντωνίου", "antoniou")),
        (("Οδός Ερμού {n}", "Αθήνα", "105 63"), ("Λεωφόρος Νίκης {n}", "Θεσσαλονίκη", "546 22")),
        ("Γεια σας, πότε θα φτάσει η παραγγελία μου;", "Θέλω να επιστρέψω αυτό το προϊόν.",  # noqa: RUF001 - Greek text
         "Ευχαριστώ πολύ, λύθηκε!"),
    ),
    _Culture(
        "fr-FR", 7, "EUR", (5, 400), 1, "33", "61xxxxxxx",
        (("Renée", "renee"), ("François", "francois"), ("Zoë", "zoe"), ("Hélène", "helene"),
         ("Jérôme", "jerome"), ("Anaïs", "anais"), ("Loïc", "loic"), ("Céline", "celine"),
         ("Théo", "theo"), ("Maëlle", "maelle")),
        (("Lefèvre", "lefevre"), ("Dubois", "dubois"), ("Bénard", "benard"),
         ("Moreau", "moreau"), ("Girard", "girard"), ("Lemaître", "lemaitre"),
         ("Côté", "cote"), ("Rousseau", "rousseau")),
        (("{n} rue de la Paix", "Paris", "75002"), ("{n} avenue Jean-Jaurès", "Lyon", "69007")),
        ("Bonjour, quand ma commande arrivera-t-elle ?", "Je voudrais retourner cet article.",
         "Merci beaucoup, c'est réglé !"),
    ),
    _Culture(
        "de-DE", 7, "EUR", (5, 400), 1, "49", "151xxxxxxxx",
        (("Jürgen", "juergen"), ("Jörg", "joerg"), ("Lena", "lena"), ("Björn", "bjoern"),
         ("Sören", "soeren"), ("Käthe", "kaethe"), ("Günther", "guenther"), ("Lukas", "lukas")),
        (("Müller", "mueller"), ("Schröder", "schroeder"), ("Weiß", "weiss"), ("Groß", "gross"),
         ("Schmidt", "schmidt"), ("Fischer", "fischer"), ("Köhler", "koehler")),
        (("Königstraße {n}", "Stuttgart", "70173"), ("Straße des 17. Juni {n}", "Berlin", "10623")),
        ("Hallo, wann kommt meine Bestellung an?", "Ich möchte diesen Artikel zurückgeben.",
         "Vielen Dank, das Problem ist gelöst!"),
    ),
    _Culture(
        "es-ES", 5, "EUR", (5, 400), 1, "34", "6xxxxxxxx",
        (("José", "jose"), ("María", "maria"), ("Lucía", "lucia"), ("Álvaro", "alvaro"),
         ("Sofía", "sofia"), ("Iñigo", "inigo"), ("Martín", "martin")),
        (("Muñoz", "munoz"), ("Núñez", "nunez"), ("Peña", "pena"), ("García", "garcia"),
         ("López", "lopez"), ("Fernández", "fernandez"), ("Ibáñez", "ibanez")),
        (("Calle de Alcalá {n}", "Madrid", "28014"),
         ("Carrer de Mallorca {n}", "Barcelona", "08013")),
        ("Hola, ¿cuándo llegará mi pedido?", "Quiero devolver este artículo.",
         "¡Muchas gracias, ya está resuelto!"),
    ),
    _Culture(
        "pt-BR", 5, "BRL", (20, 2_500), 1, "55", "119xxxxxxxx",
        (("João", "joao"), ("Conceição", "conceicao"), ("Antônio", "antonio"),
         ("Lúcia", "lucia"), ("Júlia", "julia"), ("Letícia", "leticia"), ("Thiago", "thiago")),
        (("Gonçalves", "goncalves"), ("Araújo", "araujo"), ("Magalhães", "magalhaes"),
         ("Simões", "simoes"), ("Guimarães", "guimaraes"), ("Silva", "silva")),
        (("Rua Augusta, {n}", "São Paulo", ""), ("Avenida Atlântica, {n}", "Rio de Janeiro", "")),
        ("Olá, quando chega o meu pedido?", "Quero devolver este produto.",
         "Muito obrigado, problema resolvido!"),
    ),
    _Culture(
        "pl-PL", 3, "PLN", (20, 2_000), 1, "48", "5nxxxxxxx",
        (("Łukasz", "lukasz"), ("Małgorzata", "malgorzata"), ("Zuzanna", "zuzanna"),
         ("Wojciech", "wojciech"), ("Agnieszka", "agnieszka"), ("Paweł", "pawel")),
        (("Wróbel", "wrobel"), ("Wójcik", "wojcik"), ("Kowalczyk", "kowalczyk"),
         ("Zając", "zajac"), ("Dąbrowski", "dabrowski")),
        (("ul. Marszałkowska {n}", "Warszawa", "00-624"),
         ("ul. Floriańska {n}", "Kraków", "31-019")),
        ("Dzień dobry, kiedy dotrze moje zamówienie?", "Chcę zwrócić ten produkt.",
         "Dziękuję bardzo, problem rozwiązany!"),
    ),
    _Culture(
        "sv-SE", 3, "SEK", (50, 5_000), 1, "46", "70xxxxxxx",
        (("Åsa", "asa"), ("Björn", "bjorn"), ("Märta", "marta"), ("Örjan", "orjan"),
         ("Linnéa", "linnea"), ("Erik", "erik")),
        (("Ångström", "angstrom"), ("Sjöberg", "sjoberg"), ("Lindqvist", "lindqvist"),
         ("Åberg", "aberg"), ("Söderström", "soderstrom")),
        (("Drottninggatan {n}", "Stockholm", "111 51"),
         ("Kungsportsavenyn {n}", "Göteborg", "411 36")),
        ("Hej, när kommer min beställning?", "Jag vill returnera den här varan.",
         "Tack så mycket, det är löst!"),
    ),
    _Culture(
        "en-GB", 8, "GBP", (4, 350), 1, "44", "74xxxxxxxx",
        (("Oliver", "oliver"), ("Amelia", "amelia"), ("Harry", "harry"), ("Isla", "isla"),
         ("George", "george"), ("Poppy", "poppy"), ("Jack", "jack")),
        (("Taylor", "taylor"), ("Evans", "evans"), ("Roberts", "roberts"),
         ("Walker", "walker"), ("Hughes", "hughes"), ("O'Brien", "obrien")),
        (("{n} Baker Street", "London", "NW1 6XE"), ("{n} Deansgate", "Manchester", "M3 4LQ")),
        _ENGLISH_CHAT,
    ),
    _Culture(
        "en-US", 14, "USD", (5, 500), 1, "1", "20255501xx",
        (("Emily", "emily"), ("James", "james"), ("Olivia", "olivia"), ("Michael", "michael"),
         ("Sophia", "sophia"), ("William", "william"), ("Ava", "ava"), ("Daniel", "daniel")),
        (("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"),
         ("Brown", "brown"), ("Jones", "jones"), ("Miller", "miller"), ("Wilson", "wilson")),
        (("{n} Main Street", "Springfield", "62701"),
         ("{n} Market Street", "San Francisco", "94103")),
        _ENGLISH_CHAT,
    ),
)  # fmt: skip
_CULTURE_WEIGHTS = [c.weight for c in _CULTURES]

_TIERS = ("bronze", "silver", "gold", "platinum")
_TIER_WEIGHTS = (55, 28, 13, 4)
_TAGS = ("newsletter", "vip", "app-user", "loyalty", "b2b", "early-adopter", "gift-buyer")
_DOMAINS = ("example.com", "example.org")
_SIGNUP = ("web", "app", "store", "referral")
_CATEGORIES = ("shoes", "bags", "outdoor", "kitchen", "books", "toys", "beauty", "garden")
_CAMPAIGNS = (
    "welcome-series", "spring-sale", "summer-clearance", "back-in-stock", "black-friday",
    "loyalty-bonus", "weekly-newsletter", "win-back",
)  # fmt: skip
_NETWORKS = ("instagram", "facebook", "tiktok", "x", "line", "wechat")
_CALL_TOPICS = ("order_status", "returns", "payment", "product_question", "complaint")
_REFUND_REASONS = ("wrong_size", "damaged", "changed_mind", "late_delivery")

# (name, weight, fewest, most interactions over the year)
_PROFILES = (
    ("dormant", 15, 5, 12),
    ("casual", 45, 12, 26),
    ("regular", 28, 28, 50),
    ("very_active", 12, 55, 100),
)
_SESSIONS = (
    ("browse_web", 30), ("browse_app", 14), ("email", 18), ("chat", 5), ("social", 8),
    ("call", 3), ("store", 6), ("survey", 3), ("sms", 4), ("push", 5),
)  # fmt: skip
_SESSION_NAMES = [s for s, _ in _SESSIONS]
_SESSION_WEIGHTS = [w for _, w in _SESSIONS]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a load added: new customers and newly recorded interactions."""

    customers: int
    interactions: int


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """One planned customer. Its interactions name it by ``external_id``."""

    index: int
    external_id: ExternalId
    data: CustomerInput
    interactions: tuple[InteractionInput, ...]


@dataclass(slots=True)
class _Event:
    offset: int  # seconds before "now"
    channel: Channel
    type: InteractionType
    payload: dict[str, Any]
    amount: Decimal | None = None
    currency: str | None = None


def plan_demo(customers: int, seed: int, now: datetime) -> Iterator[DemoCustomer]:
    """Customers 1..``customers`` of the dataset for ``seed``, lazily (constant memory)."""
    if customers < 0:
        raise ValueError("customers must not be negative")
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    for index in range(1, customers + 1):
        yield plan_customer(index, seed, now)


def plan_customer(index: int, seed: int, now: datetime) -> DemoCustomer:
    """Customer ``index`` (1-based) of the dataset for ``seed``; independent of the others."""
    rng = random.Random(f"cvault-demo:{seed}:{index}")  # noqa: S311 - repeatable, not secret
    # The first customers run through every culture once, so any load of a few dozen
    # customers shows every script; after that cultures follow their weights.
    if index <= len(_CULTURES):
        culture = _CULTURES[(index - 1 + seed) % len(_CULTURES)]
    else:
        culture = rng.choices(_CULTURES, weights=_CULTURE_WEIGHTS)[0]
    first, first_ascii = rng.choice(culture.first)
    last, last_ascii = rng.choice(culture.last)
    local = ".".join(re.sub(r"[^a-z0-9]", "", part.lower()) for part in (first_ascii, last_ascii))
    email = f"{local}.{index}@{rng.choice(_DOMAINS)}"
    phone = _phone(rng, culture) if rng.random() < 0.85 else None
    birth = _birth_date(rng, now.date()) if rng.random() < 0.55 else None
    address = None
    if rng.random() < 0.4:
        street, city, postal_code = rng.choice(culture.addresses)
        address = PostalAddress(
            street=street.format(n=rng.randint(1, 240)), city=city,
            postal_code=postal_code or None, country=culture.locale.split("-")[1],
        )  # fmt: skip
    tier = rng.choices(_TIERS, weights=_TIER_WEIGHTS)[0]
    tags = sorted(rng.sample(_TAGS, k=rng.choice((0, 1, 1, 2, 2, 3))))
    if tier in ("gold", "platinum") and "vip" not in tags:
        tags.append("vip")
    profile, _, fewest, most = rng.choices(_PROFILES, weights=[p[1] for p in _PROFILES])[0]
    attributes: dict[str, Any] = {
        "demo_seed": seed,
        "signup_channel": rng.choice(_SIGNUP),
        "marketing_opt_in": rng.random() < 0.6,
        "activity": profile,
    }
    ref = ExternalId(DEMO_SOURCE, f"C{index:06d}")
    data = CustomerInput(
        email=email,
        phone=phone,
        first_name=first,
        last_name=last,
        birth_date=birth,
        address=address,
        locale=culture.locale,
        tier=tier,
        tags=tags,
        attributes=attributes,
        external_ids=(ref,),
    )
    events = _history(rng, culture, profile, rng.randint(fewest, most), f"{seed}-{index}")
    events.sort(key=lambda e: -e.offset)  # oldest first; ties keep their planned order
    interactions = tuple(
        InteractionInput(
            channel=e.channel.value,
            type=e.type.value,
            occurred_at=now - timedelta(seconds=e.offset),
            customer_source=ref.source,
            customer_external_id=ref.external_id,
            amount=e.amount,
            currency=e.currency,
            external_id=f"demo-{seed}-{index}-{n}",
            payload=e.payload,
        )
        for n, e in enumerate(events, start=1)
    )
    return DemoCustomer(index=index, external_id=ref, data=data, interactions=interactions)


def _phone(rng: random.Random, culture: _Culture) -> str:
    digits = "".join(
        str(rng.randint(0, 9)) if c == "x" else str(rng.randint(1, 9)) if c == "n" else c
        for c in culture.mobile
    )
    return f"+{culture.dial}{digits}"


def _birth_date(rng: random.Random, today: date) -> date:
    return date(
        rng.randint(today.year - 80, today.year - 18), rng.randint(1, 12), rng.randint(1, 28)
    )


def _price(rng: random.Random, culture: _Culture) -> Decimal:
    """An order value with exactly the currency's number of decimals (JPY none, KWD three)."""
    low, high = culture.price
    step = culture.price_step
    whole = rng.randint(low // step, high // step) * step
    places = exponent(culture.currency)
    fraction = 0
    if places > 0 and step == 1:
        fraction = rng.choice((0, 50, 90, 95, 99)) * 10**places // 100
    return Decimal(whole * 10**places + fraction).scaleb(-places)


def _history(
    rng: random.Random, culture: _Culture, profile: str, target: int, order_prefix: str
) -> list[_Event]:
    """About ``target`` events within the last year; dormant customers stop > 60 days ago."""
    horizon = HISTORY_DAYS * _DAY
    if profile == "dormant":
        newest = rng.randint(61 * _DAY, 200 * _DAY)
        oldest = rng.randint(newest + 20 * _DAY, horizon)
    else:
        newest = 2 * 3600
        oldest = rng.randint(30 * _DAY, horizon)
    history = _History(rng, culture, newest, order_prefix)
    while len(history.events) < target:
        kind = rng.choices(_SESSION_NAMES, weights=_SESSION_WEIGHTS)[0]
        getattr(history, kind)(rng.randint(newest, oldest))
    return history.events


class _History:
    """Builds one customer's sessions. Times are seconds before "now", so later is smaller;
    a session started ``newest`` or more seconds ago ends well before "now"."""

    def __init__(self, rng: random.Random, culture: _Culture, newest: int, prefix: str) -> None:
        self.rng = rng
        self.culture = culture
        self.newest = newest
        self.prefix = prefix
        self.orders = 0
        self.events: list[_Event] = []

    def add(
        self,
        at: int,
        channel: Channel,
        kind: InteractionType,
        payload: dict[str, Any],
        amount: Decimal | None = None,
    ) -> None:
        currency = None if amount is None else self.culture.currency
        self.events.append(_Event(at, channel, kind, payload, amount, currency))

    def browse_web(self, at: int) -> None:
        self._browse(at, Channel.WEB)

    def browse_app(self, at: int) -> None:
        self.add(at, Channel.APP, InteractionType.APP_OPEN, {"screen": "home"})
        self._browse(at, Channel.APP)

    def _browse(self, at: int, channel: Channel) -> None:
        """Page views, maybe a cart that ends in a purchase (rarely refunded) or is abandoned."""
        rng = self.rng
        for _ in range(rng.randint(1, 5)):
            at -= rng.randint(8, 300)
            url = rng.choice(
                ("/", f"/p/{rng.randint(100, 999)}", f"/c/{rng.choice(_CATEGORIES)}", "/search")
            )
            self.add(at, channel, InteractionType.PAGE_VIEW, {"url": url})
        if rng.random() >= 0.35:
            return
        item = {"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.choice((1, 1, 1, 2, 2, 3))}
        at -= rng.randint(20, 400)
        self.add(at, channel, InteractionType.CART_ADD, dict(item))
        at -= rng.randint(30, 900)
        if rng.random() >= 0.45:
            self.add(at, channel, InteractionType.CART_ABANDON, dict(item))
            return
        self.orders += 1
        order = f"O-{self.prefix}-{self.orders}"
        amount = _price(rng, self.culture)
        self.add(at, channel, InteractionType.PURCHASE, {"order": order, **item}, amount)
        refund_at = at - rng.randint(2 * _DAY, 20 * _DAY)
        if rng.random() < 0.06 and refund_at >= self.newest:
            reason = {"order": order, "reason": rng.choice(_REFUND_REASONS)}
            self.add(refund_at, channel, InteractionType.REFUND, reason, amount)

    def email(self, at: int) -> None:
        campaign = {"campaign": self.rng.choice(_CAMPAIGNS)}
        if self.rng.random() < 0.02:
            self.add(at, Channel.EMAIL, InteractionType.EMAIL_BOUNCE, campaign)
            return
        self.add(at, Channel.EMAIL, InteractionType.EMAIL_OPEN, campaign)
        if self.rng.random() < 0.4:
            click = {**campaign, "url": f"/p/{self.rng.randint(100, 999)}"}
            self.add(
                at - self.rng.randint(5, 600), Channel.EMAIL, InteractionType.EMAIL_CLICK, click
            )

    def chat(self, at: int) -> None:
        for _ in range(self.rng.randint(1, 3)):
            message = {"text": self.rng.choice(self.culture.chat), "from": "customer"}
            self.add(at, Channel.CHAT, InteractionType.CHAT_MESSAGE, message)
            at -= self.rng.randint(15, 240)

    def social(self, at: int) -> None:
        post = {"network": self.rng.choice(_NETWORKS), "post": f"post-{self.rng.randint(1, 400)}"}
        self.add(at, Channel.SOCIAL, InteractionType.SOCIAL_LIKE, post)
        if self.rng.random() < 0.2:
            self.add(
                at - self.rng.randint(5, 120), Channel.SOCIAL, InteractionType.SOCIAL_SHARE, post
            )

    def call(self, at: int) -> None:
        call = {
            "direction": self.rng.choice(("inbound", "inbound", "outbound")),
            "duration_s": self.rng.randint(30, 1500),
            "topic": self.rng.choice(_CALL_TOPICS),
        }
        self.add(at, Channel.PHONE, InteractionType.CALL, call)

    def store(self, at: int) -> None:
        store = {"store": f"{self.culture.locale}-{self.rng.randint(1, 12):02d}"}
        self.add(at, Channel.STORE, InteractionType.STORE_VISIT, store)
        if self.rng.random() < 0.5:
            receipt = {**store, "receipt": f"R-{self.rng.randint(100_000, 999_999)}"}
            amount = _price(self.rng, self.culture)
            at -= self.rng.randint(300, 2400)
            self.add(at, Channel.STORE, InteractionType.PURCHASE, receipt, amount)

    def survey(self, at: int) -> None:
        channel = self.rng.choice((Channel.EMAIL, Channel.WEB))
        answer = {"survey": "nps", "score": self.rng.randint(0, 10)}
        self.add(at, channel, InteractionType.SURVEY_RESPONSE, answer)

    def sms(self, at: int) -> None:
        campaign = {"campaign": self.rng.choice(_CAMPAIGNS)}
        self.add(at, Channel.SMS, InteractionType.SMS_CLICK, campaign)

    def push(self, at: int) -> None:
        campaign = {"campaign": self.rng.choice(_CAMPAIGNS)}
        self.add(at, Channel.PUSH, InteractionType.PUSH_OPEN, campaign)


# -- loading -----------------------------------------------------------------


def load_demo(
    vault: Vault,
    *,
    customers: int,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write the dataset for ``seed``: one transaction per ``CHUNK_CUSTOMERS`` customers,
    interactions in batches of at most ``MAX_BATCH``. ``progress(n)`` follows each commit.

    Returns what was added; loading the same seed again adds nothing.
    """
    plan = plan_demo(customers, seed, vault.clock())
    created = recorded = 0
    while chunk := list(islice(plan, CHUNK_CUSTOMERS)):
        with vault.unit(AccessContext.system("demo")) as session:
            known = _known_customers(session, [c.external_id.external_id for c in chunk])
            items: list[InteractionInput] = []
            for planned in chunk:
                found = known.get(planned.external_id.external_id)
                if found is None:
                    customer_id = vault.customers.create(session, planned.data).id
                    created += 1
                elif found[1] in _LIVE:
                    customer_id = found[0]
                else:  # erased since an earlier load: nothing is recorded for it
                    continue
                items.extend(
                    replace(
                        i, customer_id=customer_id, customer_source=None, customer_external_id=None
                    )
                    for i in planned.interactions
                )
            for start in range(0, len(items), MAX_BATCH):
                batch = items[start : start + MAX_BATCH]
                recorded += vault.interactions.record_many(session, batch).inserted
        if progress is not None:
            progress(len(chunk))
    return DemoSummary(customers=created, interactions=recorded)


def _known_customers(
    session: Session, external_ids: Sequence[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """Demo customers already stored: external id -> (customer id, status)."""
    rows = session.execute(
        select(CustomerExternalIdRow.external_id, CustomerRow.id, CustomerRow.status)
        .join(CustomerRow, CustomerRow.id == CustomerExternalIdRow.customer_id)
        .where(
            CustomerExternalIdRow.source == DEMO_SOURCE,
            CustomerExternalIdRow.external_id.in_(external_ids),
        )
    ).all()
    return {ext: (cid, status) for ext, cid, status in rows}
