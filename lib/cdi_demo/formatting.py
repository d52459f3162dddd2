"""Rendering of phones, dates and timestamps in the shapes the source systems use."""

from __future__ import annotations

import numpy as np

from cdi_demo.pools import CALLING_CODE, COUNTRIES

PHONE_STYLES = ("e164", "intl", "national", "idd", "digits")


def format_phone(country: int, nsn: str, split: int, style: str) -> str:
    """One phone number (national significant number ``nsn``) in a given style.

    ``split`` is the length of the leading group (area code / mobile prefix).
    """
    c = COUNTRIES[country]
    cc = CALLING_CODE[c]
    if c == "US":
        a, x, y = nsn[:3], nsn[3:6], nsn[6:]
        if style == "national":
            return f"({a}) {x}-{y}"
        if style == "intl":
            return f"+1 {a}-{x}-{y}"
        if style == "idd":  # the US has no 00 prefix; long-distance dialling "1-..." instead
            return f"1-{a}-{x}-{y}"
        if style == "digits":
            return nsn
        return "+1" + nsn
    if style == "e164":
        return f"+{cc}{nsn}"
    if style == "idd":
        return f"00{cc}{nsn}"
    area, rest = nsn[:split], nsn[split:]
    if c == "GB":
        if split == 2:
            grouped = f"{area} {rest[:4]} {rest[4:]}"
        elif split == 3:
            grouped = f"{area} {rest[:3]} {rest[3:]}"
        else:
            grouped = f"{area} {rest}"
        trunk = "0"
    elif c == "PL":
        grouped = (f"{nsn[:3]} {nsn[3:6]} {nsn[6:]}" if split == 3
                   else f"{area} {rest[:3]} {rest[3:5]} {rest[5:]}")
        trunk = ""
    elif c == "ES":
        grouped = f"{nsn[:3]} {nsn[3:6]} {nsn[6:]}"
        trunk = ""
    else:  # DE
        grouped = f"{area} {rest}"
        trunk = "0"
    if style == "national":
        return trunk + grouped
    if style == "digits":
        return trunk + nsn
    return f"+{cc} {grouped}"  # intl


def format_phones(country, nsn, split, style) -> np.ndarray:
    out = np.empty(len(nsn), dtype=object)
    for i in range(len(nsn)):
        n = nsn[i]
        out[i] = None if n is None else format_phone(int(country[i]), n, int(split[i]), style[i])
    return out


def iso_days(days: np.ndarray) -> np.ndarray:
    """days since epoch -> 'yyyy-mm-dd' (object array)."""
    return np.datetime_as_string(np.asarray(days, dtype="datetime64[D]"), unit="D").astype(object)


def iso_seconds(secs: np.ndarray) -> np.ndarray:
    """seconds since epoch -> 'yyyy-mm-ddThh:mm:ss' (object array)."""
    return np.datetime_as_string(np.asarray(secs, dtype="datetime64[s]"), unit="s").astype(object)


# date patterns (Spark/Java pattern name -> how to build it from 'yyyy-mm-dd')
def render_date(iso: str, pattern: str) -> str:
    y, m, d = iso[:4], iso[5:7], iso[8:10]
    if pattern == "yyyy-MM-dd":
        return iso
    if pattern == "dd.MM.yyyy":
        return f"{d}.{m}.{y}"
    if pattern == "dd/MM/yyyy":
        return f"{d}/{m}/{y}"
    if pattern == "MM/dd/yyyy":
        return f"{m}/{d}/{y}"
    if pattern == "yyyy/MM/dd":
        return f"{y}/{m}/{d}"
    if pattern == "yyyyMMdd":
        return f"{y}{m}{d}"
    raise ValueError(pattern)


def render_dates(iso: np.ndarray, patterns) -> np.ndarray:
    if isinstance(patterns, str):
        patterns = [patterns] * len(iso)
    return np.array([None if s is None else render_date(s, p) for s, p in zip(iso, patterns)], dtype=object)


def ts_space(iso_s: np.ndarray) -> np.ndarray:
    """'yyyy-mm-ddThh:mm:ss' -> 'yyyy-MM-dd HH:mm:ss'."""
    return np.array([s[:10] + " " + s[11:] for s in iso_s], dtype=object)


def ts_z(iso_s: np.ndarray) -> np.ndarray:
    """-> 'yyyy-MM-ddTHH:mm:ssZ'."""
    return np.array([s + "Z" for s in iso_s], dtype=object)


def ts_dotted(iso_s: np.ndarray, seconds: bool = False) -> np.ndarray:
    """-> 'dd.MM.yyyy HH:mm' (or with :ss)."""
    end = 19 if seconds else 16
    return np.array([f"{s[8:10]}.{s[5:7]}.{s[:4]} {s[11:end]}" for s in iso_s], dtype=object)
