"""Get-Date's -Format (.NET DateTime format strings, en-US) and -UFormat (PowerShell 5.1's
strftime table) for the lab's clock."""

from __future__ import annotations

import datetime as dt

STANDARD = {
    "d": "M/d/yyyy",
    "D": "dddd, MMMM d, yyyy",
    "f": "dddd, MMMM d, yyyy h:mm tt",
    "F": "dddd, MMMM d, yyyy h:mm:ss tt",
    "g": "M/d/yyyy h:mm tt",
    "G": "M/d/yyyy h:mm:ss tt",
    "m": "MMMM d",
    "M": "MMMM d",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "h:mm tt",
    "T": "h:mm:ss tt",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "U": "dddd, MMMM d, yyyy h:mm:ss tt",
    "y": "MMMM yyyy",
    "Y": "MMMM yyyy",
}
# PowerShell 5.0+ names of its own (Get-Date -Format)
FILE_FORMATS = {
    "filedate": "yyyyMMdd",
    "filedateuniversal": "yyyyMMddZ",
    "filedatetime": "yyyyMMddTHHmmssffff",
    "filedatetimeuniversal": "yyyyMMddTHHmmssffffZ",
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _offset(when: dt.datetime, digits: int) -> str:
    minutes = int((when.utcoffset() or dt.timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    if digits == 1:
        return f"{sign}{hours}"
    if digits == 2:
        return f"{sign}{hours:02d}"
    return f"{sign}{hours:02d}:{rest:02d}"


def _field(when: dt.datetime, letter: str, count: int) -> str:
    """One run of a custom format specifier (e.g. 'yyyy', 'MMM', 'fff')."""
    hour12 = when.hour % 12 or 12
    if letter == "d":
        if count >= 4:
            return DAYS[when.weekday()]
        return DAYS[when.weekday()][:3] if count == 3 else f"{when.day:0{count}d}"
    if letter == "M":
        if count >= 4:
            return MONTHS[when.month - 1]
        return MONTHS[when.month - 1][:3] if count == 3 else f"{when.month:0{count}d}"
    if letter == "y":
        return f"{when.year % 100:0{count}d}" if count <= 2 else f"{when.year:0{count}d}"
    numbers = {"h": hour12, "H": when.hour, "m": when.minute, "s": when.second}
    if letter in numbers:
        return f"{numbers[letter]:0{min(count, 2)}d}"
    if letter in "fF":
        digits = f"{when.microsecond:06d}0"[:count]
        return digits.rstrip("0") if letter == "F" else digits
    if letter == "t":
        return ("AM" if when.hour < 12 else "PM")[:count]
    if letter == "z":
        return _offset(when, min(count, 3))
    if letter == "K":  # the lab clock is a Local DateTime of a server in UTC
        return _offset(when, 3)
    return "AD" if letter == "g" else letter * count


def net_format(when: dt.datetime, text: str) -> str:
    """DateTime.ToString(text, en-US): standard one-letter formats, PowerShell's FileDate
    names, or custom specifiers with quoted literals, \\ escapes and %."""
    if text.casefold() in FILE_FORMATS:
        if "universal" in text.casefold():
            when = when.astimezone(dt.UTC)
        text = FILE_FORMATS[text.casefold()]
    elif len(text) == 1:
        if text not in STANDARD:
            raise ValueError("Input string was not in a correct format.")
        if text in "uU":
            when = when.astimezone(dt.UTC)
        text = STANDARD[text]
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "'\"":
            end = text.find(char, i + 1)
            if end < 0:
                raise ValueError(
                    f"Cannot find a matching quote character for the character '{char}'."
                )
            out.append(text[i + 1 : end])
            i = end + 1
        elif char == "\\":
            out.append(text[i + 1 : i + 2])
            i += 2
        elif char == "%":
            i += 1
        elif char in "dMyhHmsfFtzKg":
            count = 1
            while i + count < len(text) and text[i + count] == char:
                count += 1
            out.append(_field(when, char, count))
            i += count
        else:
            out.append(char)
            i += 1
    return "".join(out)


UFORMAT = {
    "A": "dddd",
    "a": "ddd",
    "B": "MMMM",
    "b": "MMM",
    "D": "MM/dd/yy",
    "d": "dd",
    "G": "yyyy",
    "g": "yy",
    "H": "HH",
    "h": "MMM",
    "I": "hh",
    "k": "HH",
    "l": "hh",
    "M": "mm",
    "m": "MM",
    "p": "tt",
    "R": "HH:mm",
    "r": "hh:mm:ss tt",
    "S": "ss",
    "T": "HH:mm:ss",
    "X": "HH:mm:ss",
    "x": "MM/dd/yy",
    "Y": "yyyy",
    "y": "yy",
    "Z": "zz",
}


def u_format(when: dt.datetime, text: str) -> str:
    """Get-Date -UFormat as PowerShell 5.1 writes it (its own strftime table: %s is the
    seconds since 1970-01-01 of the local clock, with a fraction; %Z the offset hours)."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=when.tzinfo)
    computed = {
        "C": str(when.year // 100),
        "c": f"{net_format(when, 'ddd MMM')} {when.day:>2} {net_format(when, 'HH:mm:ss yyyy')}",
        "e": f"{when.day:>2}",
        "j": str(when.timetuple().tm_yday),
        "n": "\n",
        "t": "\t",
        "s": f"{(when - epoch).total_seconds():.15g}",
        "U": str(when.timetuple().tm_yday // 7),
        "W": str(when.timetuple().tm_yday // 7),
        "V": str(when.timetuple().tm_yday // 7 + 1),
        "u": str((when.weekday() + 1) % 7),
        "w": str((when.weekday() + 1) % 7),
    }
    out: list[str] = []
    i = 1 if text.startswith("+") else 0
    while i < len(text):
        char = text[i]
        if char == "%" and i + 1 < len(text):
            code = text[i + 1]
            if code in UFORMAT:
                out.append(net_format(when, UFORMAT[code]))
            else:
                out.append(computed.get(code, code))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)
