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

import polars as pl

from practitioner._index import PractitionerIndex, phonetic_sql
from practitioner.search.schemas import SearchQuery, SearchResult
from sources import clean_name, formal_first_name, normalise_postcode

_IDENTIFIER = re.compile(r"[^A-Z0-9/]")
MAX_RESULTS = 20
_KEY_PARAMS = phonetic_sql("?").count("?")


@dataclass
class ParsedQuery:
    first: str | None = None
    formal: str | None = None
    last: str | None = None
    dob: dt.date | None = None
    year: int | None = None
    postcode: str | None = None
    district: str | None = None
    address: str | None = None
    identifier: str | None = None
    fields: list[str] = field(default_factory=list)


def _clean(text: str) -> list[str]:
    cleaned = pl.DataFrame({"n": [text]}).select(clean_name(pl.col("n")).alias("n"))["n"][0]
    return cleaned.split() if cleaned else []


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
                parsed.last = "".join(_clean(tokens[-1])) or None
        if parsed.first:
            parsed.formal = pl.DataFrame({"f": [parsed.first]}).select(formal_first_name(pl.col("f")).alias("f"))["f"][0]
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
        full = pl.DataFrame({"p": [query.postcode]}).select(normalise_postcode(pl.col("p")).alias("p"))["p"][0]
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


def _candidates(parsed: ParsedQuery) -> tuple[str, list]:
    parts, params = [], []
    if parsed.last:
        key = f"({phonetic_sql('?')})"
        parts.append(f"select person_id from name_key where last_key = {key}")
        parts.append(f"select person_id from name_key where first_key = {key}")  # swapped names
        params += [parsed.last] * (2 * _KEY_PARAMS)
    if parsed.first:
        parts.append(f"select person_id from name_key where last_key = ({phonetic_sql('?')})")
        # a typo that changes the surname's sound is still found through the forename's key
        parts.append(f"select person_id from name_key where first_key = ({phonetic_sql('?')})")
        parts.append("select person_id from name_key where formal = ?")
        params += [parsed.first] * (2 * _KEY_PARAMS) + [parsed.formal]
    if parsed.dob:
        parts.append("select person_id from name_key where date_of_birth = ?")
        params.append(parsed.dob)
    if parsed.postcode:
        parts.append("select person_id from name_key where postcode = ?")
        params.append(parsed.postcode)
    if parsed.identifier:
        for column in ("nhs_number", "upn", "pnc_id", "ni_number", "crn"):
            parts.append(f"select person_id from record where {column} = ?")
            params.append(parsed.identifier)
    if parsed.address and not parts:
        parts.append("select person_id from person where upper(address) like ?")
        params.append(f"%{parsed.address}%")
    return " union ".join(parts), params


def _score_sql(parsed: ParsedQuery) -> tuple[str, list]:
    """Per candidate: the best name score over every name it is known by, and the other agreements."""
    params: list = []
    if parsed.last and parsed.first:
        name = ("greatest("
                "  (case when k.first_std = ? or k.formal = ? then 1.0 else jaro_winkler_similarity(k.first_std, ?) end)"
                "  + jaro_winkler_similarity(k.last_std, ?),"
                "  jaro_winkler_similarity(k.first_std, ?) + jaro_winkler_similarity(k.last_std, ?))")
        params += [parsed.first, parsed.formal, parsed.first, parsed.last, parsed.last, parsed.first]
        exact = "((k.first_std = ? or k.formal = ?) and k.last_std = ?) or (k.first_std = ? and k.last_std = ?)"
        exact_params = [parsed.first, parsed.formal, parsed.last, parsed.last, parsed.first]
    elif parsed.last:
        name = "2 * greatest(jaro_winkler_similarity(k.last_std, ?), jaro_winkler_similarity(k.first_std, ?))"
        params += [parsed.last, parsed.last]
        exact = "(k.last_std = ? or k.first_std = ?)"
        exact_params = [parsed.last, parsed.last]
    else:
        name, exact, exact_params = "0.0", "true", []
    sql = f"""
        select k.person_id,
               max(coalesce({name}, 0)) as name_score,
               bool_or({exact}) as name_exact
        from name_key as k
        where k.person_id in (select person_id from candidates)
        group by k.person_id
    """
    return sql, params + exact_params


def search(index: PractitionerIndex, query: SearchQuery) -> tuple[ParsedQuery, list[SearchResult]]:
    parsed = parse(query)
    candidates, cand_params = _candidates(parsed)
    names, name_params = _score_sql(parsed)
    filters, filter_params = [], []
    if parsed.first or parsed.last:
        filters.append("n.name_score >= ?")
        filter_params.append(1.7 if parsed.first else 1.8)
    if parsed.dob:
        filters.append("(p.date_of_birth = ? or (p.date_of_birth is null and n.name_score >= 1.9))")
        filter_params.append(parsed.dob)
    elif parsed.year:
        filters.append("year(p.date_of_birth) = ?")
        filter_params.append(parsed.year)
    if parsed.district:
        filters.append("split_part(p.postcode, ' ', 1) = ?")
        filter_params.append(parsed.district)
    if parsed.address:
        filters.append("upper(p.address) like ?")
        filter_params.append(f"%{parsed.address}%")
    identifier_hit = "false"
    id_params: list = []
    if parsed.identifier:
        identifier_hit = ("exists (select 1 from record r where r.person_id = p.person_id and ? in "
                          "(r.nhs_number, r.upn, r.pnc_id, r.ni_number, r.crn))")
        id_params = [parsed.identifier]
        filters = [f"({' and '.join(filters) or 'true'}) and {identifier_hit}"]
        filter_params = filter_params + id_params
    where = " and ".join(filters) or "true"
    sql = f"""
        with candidates as ({candidates}),
        names as ({names})
        select p.person_id, p.first_name, p.last_name, year(p.date_of_birth) as birth_year,
               split_part(p.postcode, ' ', 1) as district, p.agency_count, p.shielded, p.provisional,
               n.name_score, n.name_exact,
               {identifier_hit} as identifier_exact,
               coalesce(p.date_of_birth = ?, false) as dob_exact
        from person as p
        inner join names as n using (person_id)
        where {where}
        order by n.name_score
            + case when p.date_of_birth = ? then 1 when year(p.date_of_birth) = ? then 0.5 else 0 end
            + case when p.postcode = ? then 1 else 0 end desc,
            p.person_id
        limit {MAX_RESULTS * 2}
    """
    params = (cand_params + name_params + id_params + [parsed.dob] + filter_params
              + [parsed.dob, parsed.year, parsed.postcode])
    with index.cursor() as cur:
        rows = cur.execute(sql, params).fetchall()
    results = []
    for (person_id, first, last, birth_year, district, agencies, shielded, provisional, _score, name_exact,
         identifier_exact, dob_exact) in rows:
        if shielded:
            # only a full name with the exact date of birth, or an exact identifier, finds a shielded person
            exact = identifier_exact or (parsed.first is not None and parsed.last is not None and name_exact
                                         and parsed.dob is not None and dob_exact)
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
