"""Search the index: by name (nicknames, typos, transliteration, swapped names), date of birth (exact or
year), postcode, address or identifier. Ranked results show only enough to choose the right person.

Candidates come from exact look-ups on indexed keys (phonetic name keys, date of birth, postcode,
identifiers), then are scored with Jaro-Winkler; nothing scans the whole index for a name.
Shielded persons appear only when a full name and the exact date of birth, or an identifier, match them
exactly, and then only as what was searched (ContactPoint's rule): no postcode, no agencies, no page
beyond "contact is brokered".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache

import polars as pl

from practitioner._index import PractitionerIndex, phonetic
from practitioner.search.schemas import SearchQuery, SearchResult
from sources import clean_name, formal_first_name, normalise_postcode

_IDENTIFIER = re.compile(r"[^A-Z0-9/]")
MAX_RESULTS = 20


@dataclass
class ParsedQuery:
    first: str | None = None
    first_whole: str | None = None  # the whole first token ("Rai-Kaur Sangeeta": a surname given first)
    formal: str | None = None
    last: str | None = None
    dob: dt.date | None = None
    year: int | None = None
    postcode: str | None = None
    district: str | None = None
    address: str | None = None
    identifier: str | None = None
    fields: list[str] = field(default_factory=list)


# The same standardisation as ingest, through polars; one polars call costs a few milliseconds of Python, and a
# search made several, so each distinct text is standardised once (names repeat: a bounded cache).
@lru_cache(maxsize=65536)
def _cleaned(text: str) -> str | None:
    return pl.DataFrame({"n": [text]}).select(clean_name(pl.col("n")).alias("n"))["n"][0]


def _clean(text: str) -> list[str]:
    cleaned = _cleaned(text)
    return cleaned.split() if cleaned else []


@lru_cache(maxsize=65536)
def _formal(first: str) -> str | None:
    return pl.DataFrame({"f": [first]}).select(formal_first_name(pl.col("f")).alias("f"))["f"][0]


@lru_cache(maxsize=65536)
def _postcode(text: str) -> str | None:
    return pl.DataFrame({"p": [text]}).select(normalise_postcode(pl.col("p")).alias("p"))["p"][0]


def parse(query: SearchQuery) -> ParsedQuery:
    parsed = ParsedQuery()
    if query.name and query.name.strip():
        text = query.name.strip()
        if "," in text:  # "Smith, John"
            last, _, first = text.partition(",")
            words_first, words_last = _clean(first), _clean(last)
            parsed.first = words_first[0] if words_first else None
            parsed.last = "".join(words_last) or None
        else:
            tokens = text.split()  # split before cleaning: a hyphenated surname stays one surname
            if len(tokens) == 1:
                parsed.last = "".join(_clean(tokens[0])) or None
            else:
                parsed.first = (_clean(tokens[0]) or [None])[0]
                parsed.first_whole = "".join(_clean(tokens[0])) or None
                parsed.last = "".join(_clean(tokens[-1])) or None
        if parsed.first:
            parsed.formal = _formal(parsed.first)
        parsed.fields.append("name")
    if query.date_of_birth and query.date_of_birth.strip():
        text = query.date_of_birth.strip()
        if re.fullmatch(r"\d{4}", text):
            parsed.year = int(text)
        else:
            for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
                try:
                    parsed.dob = dt.datetime.strptime(text, fmt).date()
                    break
                except ValueError:
                    continue
            else:
                raise ValueError("Date of birth: give a date (31/12/2015) or a year (2015).")
            parsed.year = parsed.dob.year
        parsed.fields.append("date_of_birth")
    if query.postcode and query.postcode.strip():
        full = _postcode(query.postcode)
        if full:
            parsed.postcode, parsed.district = full, full.split()[0]
        else:
            parsed.district = query.postcode.strip().upper().replace(" ", "")
        parsed.fields.append("postcode")
    if query.address and query.address.strip():
        parsed.address = re.sub(r"\s+", " ", re.sub(r"[^A-Z0-9 ]", " ", query.address.upper())).strip() or None
        parsed.fields.append("address")
    if query.identifier and query.identifier.strip():
        parsed.identifier = _IDENTIFIER.sub("", query.identifier.upper()) or None
        parsed.fields.append("identifier")
    if not parsed.fields:
        raise ValueError("Give at least one of name, date of birth, postcode, address or identifier.")
    if parsed.fields in (["postcode"], ["address"]) and not parsed.postcode and not parsed.address:
        raise ValueError("A postcode district alone is too broad: add a name or a date of birth.")
    return parsed


def _keys(index: PractitionerIndex, *names: str | None) -> list[str | None]:
    """Phonetic keys of the query's names: the function that keyed the index, in Python (no round trip)."""
    return [phonetic(n) for n in names]


def _marks(values: list) -> str:
    return ", ".join("?" for _ in values)


def _candidate_rows(index: PractitionerIndex, parsed: ParsedQuery) -> tuple[str, list, set[str]]:
    """name_key rows worth scoring, each found through an index (never a scan of every name), and the persons an
    identifier named."""
    last_key, first_key, formal_key, whole_key = _keys(
        index, parsed.last, parsed.first, parsed.formal if parsed.formal != parsed.first else None,
        parsed.first_whole if parsed.first_whole != parsed.first else None)
    year = str(parsed.year) if parsed.year else None
    parts, params = [], []

    def name_key(column: str, values: list) -> str:
        """The file's name_key, or the view with the overlay when an overlay row has one of these keys."""
        return index.rel("name_key", touched=index.touches(keys=[(column, v) for v in values]))

    def ask(column: str, values: list) -> None:
        values = sorted({v for v in values if v})
        if values:
            parts.append(f"select * from {name_key(column, values)} where {column} in ({_marks(values)})")
            params.extend(values)

    if last_key and first_key:
        forenames = [first_key, formal_key]
        ask("last_first_key", [f"{last_key}|{f}" for f in forenames if f]
            + [f"{k}|{last_key}" for k in (first_key, whole_key) if k])  # + swapped
        if year:  # a typo that changes one name's sound is still found through the other name and the year
            ask("last_year_key", [f"{last_key}|{year}", f"{first_key}|{year}"])
            ask("first_year_key", [f"{f}|{year}" for f in forenames if f] + [f"{last_key}|{year}"])
    elif last_key:
        if year:
            ask("last_year_key", [f"{last_key}|{year}"])
            ask("first_year_key", [f"{last_key}|{year}"])  # a forename given as a surname
        else:
            ask("last_key", [last_key])
            ask("first_key", [last_key])
    if parsed.dob:
        ask("date_of_birth", [parsed.dob])
    if parsed.postcode:
        ask("postcode", [parsed.postcode])
    ids: list[str] = []
    by_identifier: set[str] = set()
    with index.cursor() as cur:
        if parsed.identifier:
            identifier = index.rel("identifier", touched=index.touches(keys=[("identifier", parsed.identifier)]))
            ids += [r[0] for r in cur.execute(f"select person_id from {identifier} where value = ?",
                                              [parsed.identifier]).fetchall()]
            by_identifier = set(ids)
        if parsed.address and not parts and not ids:
            ids += [r[0] for r in cur.execute(f"select person_id from {index.rel('person')} "
                                              "where upper(address) like ? limit 1000",
                                              [f"%{parsed.address}%"]).fetchall()]
    if ids:
        parts.append(f"select * from {index.rel('name_key', touched=index.touches(ids))} "
                     f"where person_id in ({_marks(ids)})")
        params += ids
    if not parts:
        return "select * from name_key where false", [], by_identifier
    # union all: a row reached through two keys is scored twice, and max / bool_or do not mind
    return " union all ".join(parts), params, by_identifier


def _name_score(parsed: ParsedQuery) -> tuple[str, list, str, list]:
    if parsed.last and parsed.first:
        name = ("greatest("
                "  (case when c.first_std = ? or c.formal = ? then 1.0 else jaro_winkler_similarity(c.first_std, ?) end)"
                "  + jaro_winkler_similarity(c.last_std, ?),"
                "  jaro_winkler_similarity(c.first_std, ?) + jaro_winkler_similarity(c.last_std, ?))")
        whole = parsed.first_whole or parsed.first
        params = [parsed.first, parsed.formal, parsed.first, parsed.last, parsed.last, whole]
        exact = "((c.first_std = ? or c.formal = ?) and c.last_std = ?) or (c.first_std = ? and c.last_std = ?)"
        exact_params = [parsed.first, parsed.formal, parsed.last, parsed.last, whole]
    elif parsed.last:
        name = "2 * greatest(jaro_winkler_similarity(c.last_std, ?), jaro_winkler_similarity(c.first_std, ?))"
        params = [parsed.last, parsed.last]
        exact = "(c.last_std = ? or c.first_std = ?)"
        exact_params = [parsed.last, parsed.last]
    else:
        return "0.0", [], "false", []
    return name, params, exact, exact_params


def search(index: PractitionerIndex, query: SearchQuery) -> tuple[ParsedQuery, list[SearchResult]]:
    parsed = parse(query)
    candidates, cand_params, by_identifier = _candidate_rows(index, parsed)
    name, name_params, exact, exact_params = _name_score(parsed)
    having, having_params = [], []
    if parsed.first or parsed.last:
        having.append("max(coalesce(" + name + ", 0)) >= ?")
        having_params += name_params + [1.7 if parsed.first else 1.8]
    if parsed.dob:
        having.append("bool_or(c.date_of_birth = ?)")
        having_params.append(parsed.dob)
    elif parsed.year:
        having.append("bool_or(year(c.date_of_birth) = ?)")
        having_params.append(parsed.year)
    if parsed.district:
        having.append("bool_or(split_part(c.postcode, ' ', 1) = ?)")
        having_params.append(parsed.district)
    sql = f"""
        with c as ({candidates})
        select c.person_id,
               max(coalesce({name}, 0)) as name_score,
               bool_or({exact}) as name_exact,
               bool_or(coalesce(c.date_of_birth = ?, false)) as dob_exact,
               bool_or(coalesce(c.postcode = ?, false)) as postcode_exact,
               -- what a result shows, kept on every name_key row at build: no second look-up per search
               any_value(c.p_first_name), any_value(c.p_last_name), any_value(c.p_birth_year), any_value(c.p_district),
               any_value(c.p_agency_count), bool_or(c.p_shielded), bool_or(c.p_provisional), any_value(c.p_address)
        from c
        group by c.person_id
        having {' and '.join(having) or 'true'}
        order by name_score + case when dob_exact then 1 else 0 end + case when postcode_exact then 1 else 0 end desc,
                 c.person_id
        limit {MAX_RESULTS * 3}
    """
    params = cand_params + name_params + exact_params + [parsed.dob, parsed.postcode] + having_params
    with index.cursor() as cur:
        scored = cur.execute(sql, params).fetchall()
    results = []
    for (person_id, _score, name_exact, dob_exact, _postcode, first, last, birth_year, district, agencies, shielded,
         provisional, address) in scored:
        if parsed.identifier and person_id not in by_identifier:
            continue
        if parsed.address and parsed.address not in address:
            continue
        if index.is_shielded(person_id, shielded):
            # only a full name with the exact date of birth, or an exact identifier, finds a shielded person
            exact = person_id in by_identifier or (parsed.first is not None and parsed.last is not None
                                                   and name_exact and parsed.dob is not None and dob_exact)
            if not exact:
                continue  # a shielded person is never revealed by a partial match
            results.append(SearchResult(person_id=person_id, name=query.name or "(as searched)",
                                        birth_year=parsed.year if "date_of_birth" in parsed.fields else None,
                                        district=None, agency_count=None, shielded=True))
        else:
            results.append(SearchResult(person_id=person_id, name=" ".join(x for x in (first, last) if x),
                                        birth_year=birth_year, district=district or None, agency_count=agencies,
                                        shielded=False, provisional=bool(provisional)))
        if len(results) >= MAX_RESULTS:
            break
    return parsed, results
