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


def _names(file: str) -> tuple[np.ndarray, np.ndarray]:
    frame = pl.read_csv(_REF / file)
    weights = frame["weight"].to_numpy()
    return frame["name"].to_numpy().astype(str), weights / weights.sum()


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
    return np.array(["".join(map(str, row)) for row in digits]) if len(digits) < 1000 else (
        pl.DataFrame({f"d{i}": digits[:, i].astype(str) for i in range(digits.shape[1])})
        .select(pl.concat_str(pl.all()).alias("v"))["v"].to_numpy()
    )


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
            "locality": "",
            "town_name": "ASHFORD VALE",
            "postcode": postcode,
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
    # twins: in 3% of households with two or more children the first two children share a birthday
    twins_hh = (k >= 2) & (rng.random(n_households)[hh] < 0.03)
    child_rank = pos - a
    day_of_year = rng.integers(0, 365, n)
    first_child_doy = day_of_year[np.clip(np.cumsum(size)[hh] - size[hh] + a, 0, n - 1)]
    first_child_age = age[np.clip(np.cumsum(size)[hh] - size[hh] + a, 0, n - 1)]
    is_twin = twins_hh & (role == "child") & (child_rank <= 1)
    day_of_year = np.where(is_twin, first_child_doy, day_of_year)
    age = np.where(is_twin, first_child_age, age)
    end = np.datetime64(extract_date)
    dob = end - (age * 365.25).astype("timedelta64[D]") - day_of_year.astype("timedelta64[D]")

    # sex: parent1 mostly female in lone-parent households, partners mostly opposite sex
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    p1_sex = np.where((htype == 3) & (rng.random(n_households) < 0.9), "F", np.where(rng.random(n_households) < 0.5, "F", "M"))
    sex = np.where(role == "parent1", p1_sex[hh], sex)
    sex = np.where((role == "parent2") & (rng.random(n) < 0.95), np.where(p1_sex[hh] == "F", "M", "F"), sex)

    male, male_p = _names("first_names_male.csv")
    female, female_p = _names("first_names_female.csv")
    surnames, surname_p = _names("surnames.csv")
    first = np.where(sex == "M", rng.choice(male, n, p=male_p), rng.choice(female, n, p=female_p))
    family_surname = rng.choice(surnames, n_households, p=surname_p)
    own_surname = rng.choice(surnames, n, p=surname_p)
    # parent2 keeps a different surname in 30% of couples; sharers and grandparents have their own
    different_partner = rng.random(n_households) < 0.3
    last = np.where(np.isin(role, ["sharer", "single"]), own_surname, family_surname[hh])
    last = np.where((role == "parent2") & different_partner[hh], own_surname, last)
    last = np.where(role == "grandparent", own_surname, last)
    # Jr/Sr: in 2% of couple-with-children households the eldest son has his father's full name
    father_first = np.where(p1_sex == "M", first[np.cumsum(size) - size], first[np.minimum(np.cumsum(size) - size + 1, n - 1)])
    junior = (htype[hh] == 2) & (role == "child") & (child_rank == 0) & (sex == "M") & (rng.random(n_households)[hh] < 0.02)
    junior &= age >= 0
    first = np.where(junior, father_first[hh], first)
    # the maiden name of married women (used by older records)
    maiden = np.where((role == "parent2") & (sex == "F") & ~different_partner[hh], own_surname, "")
    maiden = np.where((role == "parent1") & (sex == "F") & (htype[hh] == 2) & (rng.random(n) < 0.4), own_surname, maiden)
    # the other parent's surname for children of couples with different surnames (the two-surname hard case)
    other_parent_surname = np.where((role == "child") & different_partner[hh] & (htype[hh] == 2),
                                    own_surname[np.minimum(np.cumsum(size) - size + 1, n - 1)][hh], "")

    household_id = hh.astype(np.int64) + 1
    persons = pl.DataFrame(
        {
            "person_id": np.arange(1, n + 1, dtype=np.int64),
            "household_id": household_id,
            "household_type": np.array(["single", "couple", "couple_children", "lone_parent", "multi_generation",
                                        "house_share"])[htype[hh]],
            "role": role,
            "first_name": _title(first),
            "last_name": _title(last),
            "maiden_name": _title(maiden),
            "other_parent_surname": _title(other_parent_surname),
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
    c_sex = np.where(rng.random(c) < 0.5, "F", "M")
    c_first = np.where(c_sex == "M", rng.choice(male, c, p=male_p), rng.choice(female, c, p=female_p))
    communal = pl.DataFrame(
        {
            "person_id": np.arange(n + 1, n + c + 1, dtype=np.int64),
            "household_id": np.arange(n_households + 1, n_households + c + 1, dtype=np.int64),
            "household_type": np.array(["care_home", "hostel", "student_halls"])[kind],
            "role": "resident",
            "first_name": _title(c_first),
            "last_name": _title(rng.choice(surnames, c, p=surname_p)),
            "maiden_name": "",
            "other_parent_surname": "",
            "sex": c_sex,
            "date_of_birth": (end - (c_age * 365.25).astype("timedelta64[D]")
                              - rng.integers(0, 365, c).astype("timedelta64[D]")).astype("datetime64[D]"),
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
        pl.Series("phone", np.char.add("07700 9", rng.integers(10000, 99999, m).astype(str))),
    ).with_columns(pl.col("pnc_id").str.zfill(10))
    relationships = _relationships(persons)
    return persons, relationships


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
