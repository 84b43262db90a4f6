"""The demo's cultures: per locale, names in their own script (each with the ASCII
transliteration its e-mail address uses), mobile number patterns, addresses, a currency
with typical order values, and chat messages; plus how often each culture is drawn.

Pure data: adding or changing a culture is done here alone.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CULTURES", "CULTURE_WEIGHTS", "Culture", "Name"]

Name = tuple[str, str]  # (as written, ASCII transliteration for the e-mail address)


@dataclass(frozen=True, slots=True)
class Culture:
    """One locale's data for demo customers."""

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

CULTURES: tuple[Culture, ...] = (
    Culture(
        "fa-IR", 8, "IRR", (400_000, 60_000_000), 10_000, "98", "91nxxxxxxx",
        _PERSIAN_FIRST, _PERSIAN_LAST,
        (("خیابان ولیعصر، پلاک {n}", "تهران", ""), ("خیابان چهارباغ، پلاک {n}", "اصفهان", ""),
         ("بلوار زند، پلاک {n}", "شیراز", "")),
        ("سلام، سفارش من کی می‌رسد؟", "می‌خواهم این کالا را مرجوع کنم.",
         "خیلی ممنون، مشکل حل شد!"),
    ),
    Culture(
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
    Culture(
        "zh-CN", 8, "CNY", (30, 3_000), 1, "86", "13nxxxxxxxx",
        (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("秀英", "xiuying"), ("敏", "min"),
         ("静", "jing"), ("强", "qiang"), ("磊", "lei"), ("子涵", "zihan"), ("浩然", "haoran")),
        (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
         ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("周", "zhou"), ("吴", "wu")),
        (("朝阳区建国路{n}号", "北京市", ""),
         ("浦东新区世纪大道{n}号", "上海市", ""), ("天河区天河路{n}号", "广州市", "")),
        ("你好，我的订单什么时候到？", "我想退回这件商品。", "非常感谢，问题解决了！"),  # noqa: RUF001 - full-width punctuation is correct here
    ),
    Culture(
        "ar-SA", 5, "SAR", (20, 2_000), 1, "966", "50xxxxxxx",
        _ARABIC_FIRST,
        (("العتيبي", "alotaibi"), ("الشمري", "alshammari"), ("القحطاني", "alqahtani"),
         ("الغامدي", "alghamdi"), ("الزهراني", "alzahrani"), ("الحربي", "alharbi")),
        (("طريق الملك فهد، مبنى {n}", "الرياض", ""), ("شارع التحلية {n}", "جدة", "")),
        _ARABIC_CHAT,
    ),
    Culture(
        "ar-EG", 4, "EGP", (100, 20_000), 5, "20", "10xxxxxxxx",
        _ARABIC_FIRST,
        (("حسن", "hassan"), ("إبراهيم", "ibrahim"), ("المصري", "elmasry"),
         ("السيد", "elsayed"), ("عبد الله", "abdallah"), ("منصور", "mansour")),
        (("شارع التحرير {n}", "القاهرة", ""), ("طريق الكورنيش {n}", "الإسكندرية", "")),
        _ARABIC_CHAT,
    ),
    Culture(
        "ar-KW", 2, "KWD", (2, 150), 1, "965", "99xxxxxx",
        _ARABIC_FIRST,
        (("العنزي", "alenezi"), ("المطيري", "almutairi"), ("العجمي", "alajmi"),
         ("الرشيدي", "alrashidi")),
        (("شارع الخليج العربي، مبنى {n}", "الكويت", ""),),
        _ARABIC_CHAT,
    ),
    Culture(
        "ja-JP", 6, "JPY", (500, 60_000), 10, "81", "90nxxxxxxx",
        (("陽翔", "haruto"), ("さくら", "sakura"), ("蓮", "ren"), ("結衣", "yui"),
         ("大翔", "hiroto"), ("美咲", "misaki"), ("健太", "kenta"), ("葵", "aoi")),
        (("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"),
         ("伊藤", "ito"), ("渡辺", "watanabe"), ("山本", "yamamoto"), ("中村", "nakamura")),
        (("渋谷区神南1-{n}", "東京都", ""), ("北区梅田2-{n}", "大阪市", "")),
        ("こんにちは、注文はいつ届きますか？", "この商品を返品したいです。",  # noqa: RUF001 - full-width punctuation is correct here
         "ありがとうございます。解決しました！"),  # noqa: RUF001 - full-width punctuation is correct here
    ),
    Culture(
        "ko-KR", 4, "KRW", (5_000, 600_000), 100, "82", "10nxxxxxxx",
        (("민준", "minjun"), ("서연", "seoyeon"), ("지훈", "jihoon"), ("하은", "haeun"),
         ("도윤", "doyun"), ("지우", "jiwoo")),
        (("김", "kim"), ("이", "lee"), ("박", "park"), ("최", "choi"), ("정", "jung"),
         ("강", "kang")),
        (("강남구 테헤란로 {n}", "서울특별시", ""), ("해운대구 해운대로 {n}", "부산광역시", "")),
        ("안녕하세요, 주문이 언제 도착하나요?", "이 상품을 반품하고 싶어요.",
         "감사합니다, 해결되었어요!"),
    ),
    Culture(
        "ru-RU", 4, "RUB", (300, 40_000), 10, "7", "9nxxxxxxxx",
        (("Анна", "anna"), ("Дмитрий", "dmitry"), ("Екатерина", "ekaterina"),
         ("Сергей", "sergey"), ("Ольга", "olga"), ("Иван", "ivan"), ("Наталья", "natalya")),
        (("Шевченко", "shevchenko"), ("Черных", "chernykh"), ("Седых", "sedykh"),
         ("Белых", "belykh"), ("Долгих", "dolgikh"), ("Ким", "kim")),
        (("ул. Тверская, д. {n}", "Москва", ""), ("Невский пр., д. {n}", "Санкт-Петербург", "")),
        ("Здравствуйте, когда придёт мой заказ?", "Хочу вернуть этот товар.",
         "Большое спасибо, проблема решена!"),
    ),
    Culture(
        "hi-IN", 4, "INR", (300, 40_000), 1, "91", "9nxxxxxxxx",
        (("प्रिया", "priya"), ("राहुल", "rahul"), ("अनन्या", "ananya"), ("अर्जुन", "arjun"),
         ("दीपिका", "deepika"), ("विक्रम", "vikram")),
        (("शर्मा", "sharma"), ("पटेल", "patel"), ("गुप्ता", "gupta"), ("सिंह", "singh"),
         ("वर्मा", "verma"), ("रेड्डी", "reddy")),
        (("{n}, महात्मा गांधी मार्ग", "नई दिल्ली", "110001"), ("{n}, मरीन ड्राइव", "मुंबई", "400020")),
        ("नमस्ते, मेरा ऑर्डर कब आएगा?", "मैं यह सामान वापस करना चाहता हूँ।",
         "बहुत धन्यवाद, समस्या हल हो गई!"),
    ),
    Culture(
        "el-GR", 2, "EUR", (5, 400), 1, "30", "69xxxxxxxx",
        (("Γιώργος", "giorgos"), ("Μαρία", "maria"), ("Νίκος", "nikos"),
         ("Ελένη", "eleni"), ("Δημήτρης", "dimitris"), ("Σοφία", "sofia")),
        (("Οικονόμου", "oikonomou"), ("Γεωργίου", "georgiou"), ("Νικολάου", "nikolaou"),
         ("Ιωάννου", "ioannou"), ("Αντωνίου", "antoniou")),
        (("Οδός Ερμού {n}", "Αθήνα", "105 63"), ("Λεωφόρος Νίκης {n}", "Θεσσαλονίκη", "546 22")),
        ("Γεια σας, πότε θα φτάσει η παραγγελία μου;", "Θέλω να επιστρέψω αυτό το προϊόν.",  # noqa: RUF001 - Greek text
         "Ευχαριστώ πολύ, λύθηκε!"),
    ),
    Culture(
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
    Culture(
        "de-DE", 7, "EUR", (5, 400), 1, "49", "151xxxxxxxx",
        (("Jürgen", "juergen"), ("Jörg", "joerg"), ("Lena", "lena"), ("Björn", "bjoern"),
         ("Sören", "soeren"), ("Käthe", "kaethe"), ("Günther", "guenther"), ("Lukas", "lukas")),
        (("Müller", "mueller"), ("Schröder", "schroeder"), ("Weiß", "weiss"), ("Groß", "gross"),
         ("Schmidt", "schmidt"), ("Fischer", "fischer"), ("Köhler", "koehler")),
        (("Königstraße {n}", "Stuttgart", "70173"), ("Straße des 17. Juni {n}", "Berlin", "10623")),
        ("Hallo, wann kommt meine Bestellung an?", "Ich möchte diesen Artikel zurückgeben.",
         "Vielen Dank, das Problem ist gelöst!"),
    ),
    Culture(
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
    Culture(
        "pt-BR", 5, "BRL", (20, 2_500), 1, "55", "119xxxxxxxx",
        (("João", "joao"), ("Conceição", "conceicao"), ("Antônio", "antonio"),
         ("Lúcia", "lucia"), ("Júlia", "julia"), ("Letícia", "leticia"), ("Thiago", "thiago")),
        (("Gonçalves", "goncalves"), ("Araújo", "araujo"), ("Magalhães", "magalhaes"),
         ("Simões", "simoes"), ("Guimarães", "guimaraes"), ("Silva", "silva")),
        (("Rua Augusta, {n}", "São Paulo", ""), ("Avenida Atlântica, {n}", "Rio de Janeiro", "")),
        ("Olá, quando chega o meu pedido?", "Quero devolver este produto.",
         "Muito obrigado, problema resolvido!"),
    ),
    Culture(
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
    Culture(
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
    Culture(
        "en-GB", 8, "GBP", (4, 350), 1, "44", "74xxxxxxxx",
        (("Oliver", "oliver"), ("Amelia", "amelia"), ("Harry", "harry"), ("Isla", "isla"),
         ("George", "george"), ("Poppy", "poppy"), ("Jack", "jack")),
        (("Taylor", "taylor"), ("Evans", "evans"), ("Roberts", "roberts"),
         ("Walker", "walker"), ("Hughes", "hughes"), ("O'Brien", "obrien")),
        (("{n} Baker Street", "London", "NW1 6XE"), ("{n} Deansgate", "Manchester", "M3 4LQ")),
        _ENGLISH_CHAT,
    ),
    Culture(
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
CULTURE_WEIGHTS = [c.weight for c in CULTURES]
