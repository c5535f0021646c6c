"""Personal data shown masked (脱敏) to everyone who does not need it to do the work.

The rules keep a masked value readable: enough of a phone number to tell two callers apart
on a list, the surname so a field worker can say "张先生", the region part of an ID card.
Pure functions on strings; who sees what is decided in access.may_see_personal_data.
"""

import re
from collections.abc import Iterable
from typing import Any, Protocol

MASK = "*"

# 0 + a 2-digit area code for Beijing, Shanghai, Tianjin, Chongqing and the 02x cities,
# 0 + 3 digits everywhere else.
_THREE_DIGIT_AREA = re.compile(r"^0(10|2\d)")

# A mainland mobile number, optionally with +86 / 86 and spaces or dashes in the usual places.
MOBILE_RE = re.compile(r"(?<![\d])(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?![\d])")
# A landline with its area code written apart: 010-68123456, (010)68123456, 0571 8765 4321.
LANDLINE_RE = re.compile(r"(?<![\d])(?:\(0\d{2,3}\)\s?|0\d{2,3}[\s-])\d{3,4}[\s-]?\d{4}(?:-\d{1,5})?(?![\d])")
# 18-digit resident ID (GB 11643): 6-digit region, birth date, 3-digit sequence, check digit.
ID_CARD_RE = re.compile(
    r"(?<![\dA-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"
)


def _mask_digits(value: str, head: int, tail: int) -> str:
    """Mask the digits of `value` except the first `head` and the last `tail`; separators stay."""
    n = sum(ch.isdigit() for ch in value)
    if n == 0:
        return MASK * len(value) if value else ""
    out, i = [], 0
    for ch in value:
        if ch.isdigit():
            out.append(ch if i < head or i >= n - tail else MASK)
            i += 1
        else:
            out.append(ch)
    return "".join(out)


# Two numbers in one field: "13812345678，010-68123456".
_SEPARATORS = re.compile(r"(\s*[,，;；/、]\s*)")


def mask_phone(value: str | None) -> str:
    """'13812345678' → '138****5678'; '010-68123456' → '010-6****456'; '' → ''."""
    value = (value or "").strip()
    if not value:
        return ""
    parts = _SEPARATORS.split(value)
    if len(parts) > 1:
        return "".join(p if i % 2 else _mask_one_phone(p) for i, p in enumerate(parts))
    return _mask_one_phone(value)


def _mask_one_phone(value: str) -> str:
    if not value:
        return ""
    digits = re.sub(r"\D", "", value)
    country = 2 if len(digits) == 13 and digits.startswith("86") else 0
    national = digits[country:]
    if len(national) == 11 and national.startswith("1"):
        return _mask_digits(value, country + 3, 4)
    if national.startswith("0") and len(national) >= 10:
        # Landline: the area code says only the city; hide the middle of the local number.
        area = 3 if _THREE_DIGIT_AREA.match(national) else 4
        return _mask_digits(value, country + area + 1, 3)
    if len(national) >= 7:
        return _mask_digits(value, country + 1, 3)
    # Short numbers: keep the last two so an operator can still read them back.
    return _mask_digits(value, 0, min(2, len(national) - 1) if national else 0)


def mask_name(value: str | None) -> str:
    """Keep the surname: the first character of a 2–3 character name, the first two of a
    longer one (compound surnames such as 欧阳, 司马 make most 4-character names), and mask
    the rest. Latin names keep each word's initial. '张三' → '张*', '欧阳娜娜' → '欧阳**'."""
    value = (value or "").strip()
    if not value:
        return ""
    if value.isascii():
        return " ".join(w[:1] + MASK * (len(w) - 1) for w in value.split())
    letters = [i for i, ch in enumerate(value) if not (ch.isspace() or ch in "·•．.")]
    keep = 1 if len(letters) <= 3 else 2
    if len(letters) == 1:
        keep = 0
    kept = set(letters[:keep])
    return "".join(ch if (i in kept or i not in letters) else MASK for i, ch in enumerate(value))


def mask_id_card(value: str) -> str:
    """'110101199003074512' → '110101********4512': region kept, birth date hidden."""
    return value[:6] + MASK * (len(value) - 10) + value[-4:]


def mask_text(text: str | None, names: Iterable[str | None] = ()) -> str:
    """Personal data inside free text: ID card numbers, mobile and landline numbers, and the
    given names (the appellant's own name repeated in the appeal)."""
    if not text:
        return text or ""
    text = ID_CARD_RE.sub(lambda m: mask_id_card(m.group(0)), text)
    text = MOBILE_RE.sub(lambda m: mask_phone(m.group(0)), text)
    text = LANDLINE_RE.sub(lambda m: mask_phone(m.group(0)), text)
    for name in sorted({(n or "").strip() for n in names}, key=len, reverse=True):
        # A one-character "name" would mask that character everywhere in the text.
        if len(name) >= 2:
            text = text.replace(name, mask_name(name))
    return text


class _PersonalData(Protocol):
    text: str
    appellant_name: str
    appellant_phone: str


def appellant_fields(appeal: _PersonalData, *, unmasked: bool) -> dict[str, Any]:
    """The appellant's personal data as every API shows an appeal: as typed for those who may
    see it (access.may_see_personal_data), masked for everyone else, and which of the two."""
    if unmasked:
        text, name, phone = appeal.text, appeal.appellant_name, appeal.appellant_phone
    else:
        text = mask_text(appeal.text, [appeal.appellant_name])
        name, phone = mask_name(appeal.appellant_name), mask_phone(appeal.appellant_phone)
    return {"text": text, "appellant_name": name, "appellant_phone": phone, "personal_data_masked": not unmasked}


def event_note(note: str, appeal: _PersonalData, *, unmasked: bool) -> str:
    """A history row's note: the appellant's name and numbers masked in it unless `unmasked`."""
    return note if unmasked else mask_text(note, [appeal.appellant_name])
