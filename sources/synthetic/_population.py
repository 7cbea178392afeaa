"""People, households, the gazetteer and residence history of the synthetic city (vectorised numpy/polars)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

_REF = Path(__file__).parent / "reference"
_POSTCODE_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
_UPN_CHECK = np.array(list("ABCDEFGHJKLMNPQRTUVWXYZ"))
_NI_FIRST = np.array(list("ABCEGHJKLMNPRSTWXYZ"))
_NI_SECOND = np.array(list("ABCEGHJKLMNPRSTWXYZ"))
_WARDS = [
    "Abbey", "Brookside", "Castle", "Denholme", "Eastfield", "Fairview", "Greenbank", "Hillside", "Ironbridge",
    "Jubilee", "Kingsmead", "Longford", "Millbrook", "Northgate", "Oakwood", "Parkside", "Queensway", "Riverside",
    "Southmoor", "Westcliffe",
]
_STREET_STEMS = np.array(
    "Mill Church Station Park Victoria Queen King Albert Oak Elm Ash Beech Willow Cedar Chestnut Meadow Orchard "
    "Brook River Bridge Market Castle Abbey Priory Spring Hollow Holly Rose Lime Maple Hawthorn Rowan Birch Heath "
    "Moor Grange Manor Farm Windmill Mount Hill Valley Green School Chapel Garden Forest Field Stanley Gladstone "
    "Nelson Wellington Cromwell Tudor Stuart Windsor York Lancaster Derby Bedford".split()
)
_STREET_TYPES = np.array("Road Street Lane Avenue Close Drive Crescent Gardens Way Place Terrace Court Grove".split())
_HOUSE_NAMES = np.array("Rose Cottage|The Laurels|Fernleigh|Hillcrest|The Old Forge|Ivy House|Woodside|Brookfield".split("|"))
_COMMUNAL = [("RI01", "Care Home"), ("RI02A", "Hostel"), ("RI03", "Student Halls")]


_GROUP_SHARES = {  # a diverse English city (Census 2021 ethnic-group shares of cities such as Leicester/Bradford, rounded)
    "british": 0.60, "irish": 0.015, "polish": 0.04, "romanian": 0.02, "muslim_south_asian": 0.10,
    "indian": 0.06, "black_african": 0.05, "somali": 0.02, "caribbean": 0.03, "chinese": 0.02, "arab": 0.025,
}


def _ranked(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Names in popularity order with Zipf-like weights (1 / (rank + 2))."""
    weights = 1.0 / (frame["rank"].to_numpy() + 2.0)
    return frame["name"].to_numpy().astype(str), weights / weights.sum()


def _draw_first(rng: np.random.Generator, group: np.ndarray, sex: np.ndarray, birth_year: np.ndarray) -> np.ndarray:
    """First names by ethnic group, sex and (for the largest group) birth cohort."""
    table = pl.read_csv(_REF / "first_names.csv")
    cohort = np.where(birth_year < 1965, "older", np.where(birth_year < 1995, "middle", "young"))
    out = np.empty(len(group), dtype=object)
    for (g, s, c), frame in table.group_by(["group", "sex", "cohort"], maintain_order=True):
        rows = (group == g) & (sex == s) & ((cohort == c) if c != "all" else True)
        if rows.any():
            names, p = _ranked(frame.sort("rank"))
            out[rows] = rng.choice(names, int(rows.sum()), p=p)
    return out.astype(str)


def _draw_surnames(rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
    table = pl.read_csv(_REF / "surnames.csv")
    out = np.empty(len(group), dtype=object)
    for (g,), frame in table.group_by(["group"], maintain_order=True):
        rows = group == g
        if rows.any():
            names, p = _ranked(frame.sort("rank"))
            out[rows] = rng.choice(names, int(rows.sum()), p=p)
    return out.astype(str)


def _polish_form(surnames: np.ndarray, sex: np.ndarray) -> np.ndarray:
    """Polish surnames agree with sex: Kowalski (m) / Kowalska (f)."""
    female = pl.Series(surnames).str.replace(r"ski$", "ska").str.replace(r"cki$", "cka").str.replace(r"dzki$", "dzka")
    return np.where(sex == "F", female.to_numpy(), surnames)


def _title(values: np.ndarray) -> np.ndarray:
    series = pl.Series(values)
    return series.str.to_titlecase().str.replace_all(r"O'(\w)", "O'$1").to_numpy()


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Valid NHS numbers: modulus-11 check digit; bodies whose check would be 10 are redrawn."""
    digits = rng.integers(0, 10, size=(n, 9))
    digits[:, 0] = rng.integers(4, 10, size=n)  # realistic leading digits, never all zeros
    weights = np.arange(10, 1, -1)
    while True:
        check = 11 - (digits @ weights) % 11
        check[check == 11] = 0
        bad = check == 10
        if not bad.any():
            break
        digits[bad, 8] = rng.integers(0, 10, size=bad.sum())
    full = np.concatenate([digits, check[:, None]], axis=1)
    return _digits_to_str(full)


def _digits_to_str(digits: np.ndarray) -> np.ndarray:
    """Rows of digits as zero-padded strings (up to 18 digits fit an int64)."""
    width = digits.shape[1]
    value = digits.astype(np.int64) @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))
    return pl.Series(value).cast(pl.String).str.zfill(width).to_numpy()


def upn_check_letter(body_values: np.ndarray) -> np.ndarray:
    """DfE UPN check letter: Σ(char value × position weight 2..13) mod 23 → letter (digits only bodies here)."""
    weights = np.arange(2, 14)
    return _UPN_CHECK[(body_values @ weights) % 23]


def upns(rng: np.random.Generator, n: int) -> np.ndarray:
    body = np.concatenate(
        [np.tile([8, 8, 1], (n, 1)), rng.integers(0, 10, size=(n, 9))], axis=1
    )  # LA 881 (fictional), establishment, year, serial
    return np.char.add(upn_check_letter(body), _digits_to_str(body))


def ni_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    first = rng.choice(_NI_FIRST, n)
    second = rng.choice(_NI_SECOND, n)
    prefix = np.char.add(first, second)
    banned = np.isin(prefix, ["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"])
    prefix[banned] = "AB"
    digits = _digits_to_str(rng.integers(0, 10, size=(n, 6)))
    return np.char.add(np.char.add(prefix, digits), rng.choice(np.array(list("ABCD")), n))


def gazetteer(rng: np.random.Generator, households: int, communal_places: int) -> pl.DataFrame:
    """A council LLPG: roughly 15% spare properties beyond the households, plus communal establishments."""
    properties = int(households * 1.15) + 50
    per_street = 40
    streets = max(-(-properties // per_street), 20)
    ward_of_street = np.arange(streets) % 20
    street_names = np.char.add(np.char.add(rng.choice(_STREET_STEMS, streets), " "), rng.choice(_STREET_TYPES, streets))
    # make street names unique within a ward-district by suffixing duplicates with a locality
    street = np.repeat(np.arange(streets), per_street)[:properties]
    number = (np.arange(properties) % per_street) + 1
    is_flat = rng.random(properties) < 0.2
    flat_no = np.where(is_flat, rng.integers(1, 9, properties), 0)
    has_name = (~is_flat) & (rng.random(properties) < 0.03)
    ward = ward_of_street[street]
    has_locality = rng.random(streets) < 0.5  # half the streets lie in a named locality (the ward's village)
    sector = (street // 20) % 10
    unit = street * 3 + (number - 1) // 14  # ~14 properties per postcode unit
    postcode = _postcodes(ward, sector, unit)
    uprn = 100000000 + np.arange(properties, dtype=np.int64) * 7 + 3
    frame = pl.DataFrame(
        {
            "uprn": uprn,
            "usrn": 20000000 + street,
            "sao_text": np.where(is_flat, np.char.add("FLAT ", flat_no.astype(str)), ""),
            "pao_start_number": number.astype(np.int64),
            "pao_text": np.where(has_name, rng.choice(_HOUSE_NAMES, properties), ""),
            "street_description": street_names[street],
            "locality": np.where(has_locality[street], np.char.upper(np.array(_WARDS)[ward].astype(str)), ""),
            "town_name": "ASHFORD VALE",
            "postcode": postcode,
            # the postcode of the next unit along the street: what a clerk types from memory
            "neighbour_postcode": _postcodes(ward, sector, street * 3 + ((number - 1) // 14 + 1) % 3),
            "ward_code": np.char.add("E0500", (1000 + ward).astype(str)),
            "ward_name": np.array(_WARDS)[ward],
            "classification_code": np.where(is_flat, "RD06", rng.choice(np.array(["RD02", "RD03", "RD04"]), properties)),
            "is_communal": np.zeros(properties, dtype=bool),
        }
    )
    c = communal_places
    kinds = np.arange(c) % 3
    cstreet = rng.integers(0, streets, c)
    cward = ward_of_street[cstreet]
    communal = pl.DataFrame(
        {
            "uprn": 900000000 + np.arange(c, dtype=np.int64) * 11 + 5,
            "usrn": 20000000 + cstreet,
            "sao_text": "",
            "pao_start_number": (200 + np.arange(c)).astype(np.int64),
            "pao_text": np.char.add(np.char.add(rng.choice(_STREET_STEMS, c), " "),
                                    np.array([_COMMUNAL[k][1] for k in kinds])),
            "street_description": street_names[cstreet],
            "locality": "",
            "town_name": "ASHFORD VALE",
            "postcode": _postcodes(cward, (cstreet // 20) % 10, 9000 + np.arange(c)),
            "neighbour_postcode": _postcodes(cward, (cstreet // 20) % 10, 9001 + np.arange(c)),
            "ward_code": np.char.add("E0500", (1000 + cward).astype(str)),
            "ward_name": np.array(_WARDS)[cward],
            "classification_code": np.array([_COMMUNAL[k][0] for k in kinds]),
            "is_communal": np.ones(c, dtype=bool),
        }
    )
    return pl.concat([frame, communal])


def _postcodes(ward: np.ndarray, sector: np.ndarray, unit: np.ndarray) -> np.ndarray:
    district = (ward + 1).astype(str)
    letters = _POSTCODE_UNIT_LETTERS
    u1 = letters[(unit // len(letters)) % len(letters)]
    u2 = letters[unit % len(letters)]
    inward = np.char.add(np.char.add(sector.astype(str), u1), u2)
    return np.char.add(np.char.add(np.char.add("AV", district), " "), inward)


def population(rng: np.random.Generator, people: int, extract_date: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Households and their members. Returns (persons, relationships)."""
    # household types: 0 single, 1 couple, 2 couple+children, 3 lone parent, 4 multi-generation, 5 house share
    type_p = np.array([0.28, 0.20, 0.25, 0.13, 0.07, 0.07])
    mean_size = np.dot(type_p, [1, 2, 4.2, 2.9, 5.2, 3])
    communal_residents = int(people * 0.015)
    n_households = int((people - communal_residents) / mean_size) + 1
    htype = rng.choice(6, n_households, p=type_p)
    kids = np.where(htype == 2, rng.integers(1, 5, n_households),
                    np.where(htype == 3, rng.integers(1, 4, n_households),
                             np.where(htype == 4, rng.integers(1, 4, n_households), 0)))
    adults = np.select([htype == 0, htype == 1, htype == 2, htype == 3, htype == 4, htype == 5],
                       [1, 2, 2, 1, 2, rng.integers(2, 5, n_households)])
    grandparents = np.where(htype == 4, rng.integers(1, 3, n_households), 0)
    size = adults + kids + grandparents
    hh = np.repeat(np.arange(n_households), size)
    pos = np.arange(hh.size) - np.repeat(np.cumsum(size) - size, size)
    a, k = adults[hh], kids[hh]
    role = np.where(pos < a, np.where(htype[hh] == 5, "sharer", np.where(pos == 0, "parent1", "parent2")),
                    np.where(pos < a + k, "child", "grandparent"))
    role = np.where((htype[hh] == 0) & (pos == 0), "single", role)
    role = np.where((htype[hh] == 1) & (pos < 2), np.where(pos == 0, "parent1", "parent2"), role)
    n = hh.size

    # ages: a household-level parent age; children younger by at least 18 years; grandparents older
    parent_age = rng.integers(22, 56, n_households)
    parent_age = np.where(htype <= 1, rng.integers(18, 92, n_households), parent_age)
    parent_age = np.where(htype == 5, rng.integers(18, 35, n_households), parent_age)
    max_child = np.minimum(25, parent_age - 4 - 18)  # both partners at least 18 years older
    age = np.where(role == "child", (rng.random(n) * (max_child[hh] + 1)).astype(int),
                   np.where(role == "grandparent", parent_age[hh] + rng.integers(20, 30, n),
                            np.where(role == "parent2", np.clip(parent_age[hh] + rng.integers(-4, 5, n), 18, None),
                                     np.where(role == "sharer", rng.integers(18, 40, n), parent_age[hh]))))
    age = np.minimum(age, 99)
    # multiple births: about 3% of children are twins, about 1 in 2,000 a triplet (ONS birth characteristics)
    child_rank = pos - a
    first_child = np.clip(np.cumsum(size)[hh] - size[hh] + a, 0, n - 1)
    multiple = rng.random(n_households)
    triplet_hh = (kids >= 3) & (multiple < 0.0012)
    twins_hh = (kids >= 2) & (multiple >= 0.0012) & (multiple < 0.0012 + 0.045)
    day_of_year = rng.integers(0, 365, n)
    is_twin = (role == "child") & ((twins_hh[hh] & (child_rank <= 1)) | (triplet_hh[hh] & (child_rank <= 2)))
    day_of_year = np.where(is_twin, day_of_year[first_child], day_of_year)
    age = np.where(is_twin, age[first_child], age)
    end = np.datetime64(extract_date)
    dob = end - (age * 365.25).astype("timedelta64[D]") - day_of_year.astype("timedelta64[D]")
    birth_year = dob.astype("datetime64[Y]").astype(int) + 1970

    # sex: parent1 mostly female in lone-parent households, partners mostly opposite sex
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    p1_sex = np.where((htype == 3) & (rng.random(n_households) < 0.9), "F", np.where(rng.random(n_households) < 0.5, "F", "M"))
    sex = np.where(role == "parent1", p1_sex[hh], sex)
    sex = np.where((role == "parent2") & (rng.random(n) < 0.95), np.where(p1_sex[hh] == "F", "M", "F"), sex)

    # ethnic group: per household; a partner from another group in 10% of couples; sharers each their own
    groups = np.array(list(_GROUP_SHARES))
    shares = np.array(list(_GROUP_SHARES.values()))
    hh_group = rng.choice(groups, n_households, p=shares / shares.sum())
    own_group = rng.choice(groups, n, p=shares / shares.sum())
    group = np.where((role == "sharer") | ((role == "parent2") & (rng.random(n) < 0.1)), own_group, hh_group[hh])
    first = _draw_first(rng, group, sex, birth_year)
    middle = np.where(rng.random(n) < np.where(np.isin(group, ["british", "irish", "caribbean"]), 0.6, 0.3),
                      _draw_first(rng, group, sex, birth_year), "")
    middle = np.where(middle == first, "", middle)
    family_surname = _draw_surnames(rng, hh_group)
    own_surname = _draw_surnames(rng, group)
    # parent2 keeps a different surname in 30% of couples; sharers and grandparents have their own
    different_partner = rng.random(n_households) < 0.3
    last = np.where(np.isin(role, ["sharer", "single"]), own_surname, family_surname[hh])
    last = np.where((role == "parent2") & different_partner[hh], own_surname, last)
    last = np.where(role == "grandparent", own_surname, last)
    p2_index = np.minimum(np.cumsum(size) - size + 1, n - 1)
    # double-barrelled: in 15% of couple-with-children households whose parents' surnames differ
    double = (htype[hh] == 2) & (role == "child") & different_partner[hh] & (rng.random(n_households)[hh] < 0.5)
    last = np.where(double, np.char.add(np.char.add(family_surname[hh], "-"), own_surname[p2_index][hh]), last)
    # Jr/Sr: in 2% of couple-with-children households the eldest son has his father's full name
    father_first = np.where(p1_sex == "M", first[np.cumsum(size) - size], first[p2_index])
    junior = (htype[hh] == 2) & (role == "child") & (child_rank == 0) & (sex == "M") & (rng.random(n_households)[hh] < 0.02)
    first = np.where(junior, father_first[hh], first)
    last = np.where(group == "polish", _polish_form(last, sex), last)
    # the maiden name of married women (used by older records)
    maiden = np.where((role == "parent2") & (sex == "F") & ~different_partner[hh], own_surname, "")
    maiden = np.where((role == "parent1") & (sex == "F") & (htype[hh] == 2) & (rng.random(n) < 0.4), own_surname, maiden)
    maiden = np.where(group == "polish", _polish_form(maiden, sex), maiden)
    # the other parent's surname for children of couples with different surnames (the two-surname hard case)
    other_parent_surname = np.where((role == "child") & different_partner[hh] & (htype[hh] == 2) & ~double,
                                    own_surname[p2_index][hh], "")
    # a child whose surname changed (a parent's new partnership): the old surname stays in older records
    previous_surname = np.where((role == "child") & (rng.random(n) < 0.05) & (age >= 2), _draw_surnames(rng, group), "")
    previous_surname = np.where(previous_surname == last, "", previous_surname)

    # surname conventions that differ between systems: many Bangladeshi and Pakistani women are recorded as
    # Begum or Bibi in some systems and under their husband's or father's name in others; Somali names are
    # patronymic (given name, father's, grandfather's), so systems disagree on which part is the surname
    convention = np.where((group == "muslim_south_asian") & (sex == "F") & (rng.random(n) < 0.5),
                          np.where(rng.random(n) < 0.7, "Begum", "Bibi"), "")
    convention = np.where((group == "somali") & (rng.random(n) < 0.6), _draw_surnames(rng, group), convention)
    convention = np.where(convention == last, "", convention)

    # people who arrived with no documented date of birth are given 1 January of the believed year by the
    # Home Office; systems fed from their documents (benefits, GP registration, housing) carry that date while
    # others record the date the person gives
    documented_jan1 = np.isin(group, ["somali", "arab", "black_african"]) & (age >= 16) & (rng.random(n) < 0.35)

    # tenure (English Housing Survey 2022-23: about 65% own, 19% rent privately, 16% rent socially)
    tenure = rng.choice(np.array(["owner", "private_rent", "social_rent"]), n_households, p=[0.65, 0.19, 0.16])
    tenure = np.where(htype == 5, "private_rent", tenure)

    household_id = hh.astype(np.int64) + 1
    persons = pl.DataFrame(
        {
            "person_id": np.arange(1, n + 1, dtype=np.int64),
            "household_id": household_id,
            "household_type": np.array(["single", "couple", "couple_children", "lone_parent", "multi_generation",
                                        "house_share"])[htype[hh]],
            "tenure": tenure[hh],
            "role": role,
            "ethnic_group": group,
            "first_name": first,
            "middle_name": middle,
            "last_name": last,
            "maiden_name": maiden,
            "other_parent_surname": other_parent_surname,
            "previous_surname": previous_surname,
            "alternate_surname": convention,
            "documented_jan1": documented_jan1,
            "sex": sex,
            "date_of_birth": dob.astype("datetime64[D]"),
            "age": age.astype(np.int64),
            "is_twin": is_twin,
            "is_junior": junior,
        }
    )
    # communal residents: elderly (care homes), adults (hostels), students (halls); each their own household
    c = communal_residents
    kind = rng.choice(3, c, p=[0.45, 0.3, 0.25])
    c_age = np.select([kind == 0, kind == 1], [rng.integers(70, 100, c), rng.integers(18, 60, c)], rng.integers(18, 23, c))
    c_sex = np.where(rng.random(c) < np.where(kind == 1, 0.25, 0.5), "F", "M")
    c_group = rng.choice(groups, c, p=shares / shares.sum())
    c_dob = (end - (c_age * 365.25).astype("timedelta64[D]") - rng.integers(0, 365, c).astype("timedelta64[D]")).astype("datetime64[D]")
    c_year = c_dob.astype("datetime64[Y]").astype(int) + 1970
    communal = pl.DataFrame(
        {
            "person_id": np.arange(n + 1, n + c + 1, dtype=np.int64),
            "household_id": np.arange(n_households + 1, n_households + c + 1, dtype=np.int64),
            "household_type": np.array(["care_home", "hostel", "student_halls"])[kind],
            "tenure": "communal",
            "role": "resident",
            "ethnic_group": c_group,
            "first_name": _draw_first(rng, c_group, c_sex, c_year),
            "middle_name": "",
            "last_name": _polish_form(_draw_surnames(rng, c_group), c_sex),
            "maiden_name": "",
            "other_parent_surname": "",
            "previous_surname": "",
            "alternate_surname": "",
            "documented_jan1": np.zeros(c, dtype=bool),
            "sex": c_sex,
            "date_of_birth": c_dob,
            "age": c_age.astype(np.int64),
            "is_twin": np.zeros(c, dtype=bool),
            "is_junior": np.zeros(c, dtype=bool),
        }
    )
    persons = pl.concat([persons, communal])
    m = persons.height
    persons = persons.with_columns(
        pl.Series("nhs_number", nhs_numbers(rng, m)),
        pl.Series("ni_number", ni_numbers(rng, m)),
        pl.Series("upn", upns(rng, m)),
        pl.Series("pnc_id", np.char.add(np.char.add(rng.integers(0, 26, m).astype(str).astype("<U2"), "/"),
                                       np.char.add(rng.integers(100000, 999999, m).astype(str),
                                                   rng.choice(np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ")), m)))),
        pl.Series("crn", np.char.add(rng.choice(np.array(list("ABCDEFGHX")), m), rng.integers(100000, 999999, m).astype(str))),
    ).with_columns(pl.col("pnc_id").str.zfill(10))
    persons = _contacts(rng, persons)
    relationships = _relationships(persons)
    return persons, relationships


def _mobiles(numbers: np.ndarray) -> np.ndarray:
    """07XX 9XXXXX style mobile numbers from integers below ten million."""
    s = pl.Series(numbers.astype(np.int64))
    return ("077" + (s // 100_000).cast(pl.String).str.zfill(2) + " 9"
            + (s % 100_000).cast(pl.String).str.zfill(5)).to_numpy()


def _contacts(rng: np.random.Generator, persons: pl.DataFrame) -> pl.DataFrame:
    """Phones and emails as households have them.

    Own mobiles from age 11 (Ofcom: most children have a phone by 11-12; about 95% of adults); a landline in
    about 40% of households (shared by everyone there); 40% of mobile owners changed number in the last three
    years (no published rate; pay-as-you-go churn is high in the households agencies know best), the old
    number lingering in other agencies' records; emails for about three adults in four.
    """
    n = persons.height
    age = persons["age"].to_numpy()
    own = rng.random(n) < np.where(age >= 16, 0.95, np.where(age >= 11, 0.6, 0.0))
    # ten million possible numbers, so a large city has few accidental shares
    mobile = _mobiles(rng.choice(10_000_000, n, replace=False) if n <= 10_000_000 else rng.integers(0, 10_000_000, n))
    old = _mobiles(rng.integers(0, 10_000_000, n))
    changed = own & (rng.random(n) < 0.4)
    hh = persons["household_id"].to_numpy()
    landline_hh = rng.random(hh.max() + 1) < 0.4
    landline_no = ("01632 " + pl.Series(hh % 1_000_000).cast(pl.String).str.zfill(6)).to_numpy()
    first = persons["first_name"].str.to_lowercase().str.replace_all(r"[^a-z]", "")
    last = persons["last_name"].str.to_lowercase().str.replace_all(r"[^a-z]", "")
    has_email = (age >= 18) & (rng.random(n) < 0.75)
    domains = np.array(["mail.example", "inbox.example", "post.example"])
    email = (first + "." + last + pl.Series(rng.integers(1, 99, n).astype(str)) + "@"
             + pl.Series(rng.choice(domains, n))).to_numpy()
    return persons.with_columns(
        pl.Series("mobile", np.where(own, mobile, "")),
        pl.Series("mobile_old", np.where(changed, old, "")),
        pl.Series("landline", np.where(landline_hh[hh], landline_no, "")),
        pl.Series("email", np.where(has_email, email, "")),
    )


def _relationships(persons: pl.DataFrame) -> pl.DataFrame:
    p = persons.select("person_id", "household_id", "role")
    parents = p.filter(pl.col("role").is_in(["parent1", "parent2"]))
    children = p.filter(pl.col("role") == "child")
    parent_of = parents.join(children, on="household_id", suffix="_child").select(
        "person_id", pl.col("person_id_child").alias("related_person_id"), pl.lit("parent_of").alias("relationship")
    )
    p1 = p.filter(pl.col("role") == "parent1")
    p2 = p.filter(pl.col("role") == "parent2")
    partners = p1.join(p2, on="household_id", suffix="_2").select(
        "person_id", pl.col("person_id_2").alias("related_person_id"), pl.lit("partner_of").alias("relationship")
    )
    return pl.concat([parent_of, partners])


def nlpg_dtf(llpg: pl.DataFrame, extract_date: dt.date, rng: np.random.Generator) -> str:
    """The gazetteer as an LLPG custodian exports it: NLPG DTF 7.3 style records (10 header, 15 street
    descriptor, 21 BLPU, 24 LPI, 32 classification, 99 trailer), no header row, text fields quoted.

    About 3% of properties also carry a historical LPI (logical status 8: a renamed or renumbered address),
    which a reader must skip.
    """
    day = extract_date.isoformat()

    def q(col: str) -> pl.Expr:
        return pl.lit('"') + pl.col(col).cast(pl.String).fill_null("").str.replace_all('"', "'") + pl.lit('"')

    streets = llpg.group_by("usrn", maintain_order=True).agg(
        pl.col("street_description").first(), pl.col("locality").first(), pl.col("town_name").first())
    s15 = streets.select(pl.concat_str([pl.lit("15,I"), pl.int_range(pl.len()).cast(pl.String), pl.col("usrn").cast(pl.String),
                                        q("street_description"), q("locality"), q("town_name"), pl.lit('"ASHFORD VALE",ENG')],
                                       separator=",").alias("line"))
    n = llpg.height
    frame = llpg.with_columns(
        pl.Series("x", (400000 + rng.integers(0, 20000, n)).astype(str)),
        pl.Series("y", (300000 + rng.integers(0, 20000, n)).astype(str)),
        pl.col("sao_text").str.extract(r"(\d+)").fill_null("").alias("sao_number"),
        pl.col("uprn").cast(pl.String).alias("u"),
    )
    s21 = frame.select(pl.concat_str([
        pl.lit("21,I"), pl.int_range(pl.len()).cast(pl.String), pl.col("u"), pl.lit("1,2,,"), pl.col("x"), pl.col("y"),
        pl.lit(f"1,9999,2000-01-01,,{day},2000-01-01,D"), q("postcode"), pl.lit("0")], separator=",").alias("line"))
    s24 = frame.select(pl.concat_str([
        pl.lit("24,I"), pl.int_range(pl.len()).cast(pl.String), pl.col("u"), pl.lit("9999L") + pl.col("u"),
        pl.lit(f"ENG,1,2000-01-01,,{day},2000-01-01"), pl.col("sao_number"), pl.lit(",,"), q("sao_text"),
        pl.col("pao_start_number").cast(pl.String), pl.lit(",,"), q("pao_text"), pl.col("usrn").cast(pl.String),
        pl.lit(",Y,Y")], separator=",").alias("line"))
    historic = frame.filter(pl.Series(rng.random(n) < 0.03)).select(pl.concat_str([
        pl.lit("24,I"), pl.int_range(pl.len()).cast(pl.String), pl.col("u"), pl.lit("9999H") + pl.col("u"),
        pl.lit("ENG,8,1990-01-01,1999-12-31,2000-01-01,1990-01-01,,,,,\"\""),
        (pl.col("pao_start_number") + 100).cast(pl.String), pl.lit(",,"), pl.lit('"OLD NAME"'), pl.col("usrn").cast(pl.String),
        pl.lit(",N,N")], separator=",").alias("line"))
    s32 = frame.select(pl.concat_str([
        pl.lit("32,I"), pl.int_range(pl.len()).cast(pl.String), pl.col("u"), pl.lit("9999C") + pl.col("u"),
        pl.col("classification_code"), pl.lit(f"AddressBase Premium Classification Scheme,1.0,2000-01-01,,{day},2000-01-01")],
        separator=",").alias("line"))
    header = f'10,"ASHFORD VALE CITY COUNCIL",9999,{day},0,{day},000000,7.3,F'
    body = pl.concat([s15, s21, s24, historic, s32])["line"].to_list()
    trailer = f"99,0,{len(body) + 2},{day},000000"
    return "\r\n".join([header, *body, trailer]) + "\r\n"


def postcode_lookup(llpg: pl.DataFrame) -> pl.DataFrame:
    """Postcode → ward, as the ONS postcode directory (NSPL) gives it: the gazetteer has no wards."""
    return llpg.select(pl.col("postcode").alias("pcds"), pl.col("ward_code").alias("wd25cd"),
                       pl.col("ward_name").alias("wd25nm")).unique("pcds", keep="first", maintain_order=True).sort("pcds")
