"""Contracts: validated on load with file and key in the message; a new schema needs a YAML file, no code."""

import datetime as dt
import json

import pytest

from sources._contract import ContractError, load_contract, load_contracts
from sources._mapping import apply_contract
from sources._readers import read_extract
from sources._standardise import standardise_person_records


def test_the_seven_agency_contracts_load():
    contracts = load_contracts("sources/contracts")
    assert set(contracts) == {"police", "probation", "housing", "health", "education", "social_care", "benefits"}
    assert contracts["health"].sharing.restricted_fields == ["health_need_detail"]
    assert all(c.sharing.lawful_basis for c in contracts.values())


@pytest.mark.parametrize(
    "yaml_text, fragment",
    [
        ("source: x\n", "agency: Field required"),
        ("source: x\nagency: X\nfile_pattern: '*'\nformat: docx\nrecord_key: ID\ntrust_rank: 1\n"
         "sharing: {owning_organisation: o, lawful_basis: b, retention_days: 1}\nperson: {}\n", "format"),
        ("source: x\nagency: X\nfile_pattern: '*'\nformat: csv\nrecord_key: ID\ntrust_rank: 1\n"
         "sharing: {owning_organisation: o, lawful_basis: b, retention_days: 1}\n"
         "person: {first_nam: {column: A}}\n", "unknown canonical field"),
        ("source: x\nagency: X\nfile_pattern: '*'\nformat: csv\nrecord_key: ID\ntrust_rank: 1\n"
         "sharing: {owning_organisation: o, lawful_basis: b, retention_days: 1}\n"
         "person: {first_name: {column: A}}\ninvolvements: [{agency: A, service: {column: S, value: v}}]\n",
         "involvements.0.service"),
        ("source: x\n  bad: [\n", "not valid YAML"),
        ("source: x\nagency: X\nfile_pattern: '*'\nformat: csv\nrecord_key: ID\ntrust_rank: 1\ncolumns: [ID]\n"
         "sharing: {owning_organisation: o, lawful_basis: b, retention_days: 1}\n"
         "person: {first_name: {column: A}}\n", "declared header lacks"),
    ],
)
def test_wrong_contract_names_file_and_key(tmp_path, yaml_text, fragment):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert "broken.yaml" in str(info.value) and fragment in str(info.value)


FIRE_CONTRACT = """
source: fire_service
agency: Fire and Rescue
file_pattern: "fire/safe_and_well_*.jsonl"
format: jsonl
record_key: visit_ref
extract_date: {from_file_name: 'safe_and_well_(?P<date>\\d{8})'}
trust_rank: 5
sharing: {owning_organisation: Vale Fire and Rescue, lawful_basis: "UK GDPR Art 6(1)(e)", retention_days: 730}
person:
  surname_first_name: {column: occupant}
  date_of_birth: {column: born, formats: ["%d.%m.%Y"]}
  address_text: {column: premises}
  postcode: {column: pc}
  nhs_number: {column: nhs}
involvements:
  - agency: Fire and Rescue
    service: {value: Safe and well visit}
    worker_name: {column: crew_manager}
    start_date: {column: visited, formats: ["%d.%m.%Y"]}
"""


def test_unseen_extract_schema_loads_and_standardises_without_code_change(tmp_path):
    contract_path = tmp_path / "contracts" / "fire_service.yaml"
    contract_path.parent.mkdir()
    contract_path.write_text(FIRE_CONTRACT)
    landing = tmp_path / "landing" / "fire"
    landing.mkdir(parents=True)
    rows = [
        {"visit_ref": "F-1", "occupant": "O'BRIEN, Bill James", "born": "02.03.1950", "premises": "2/14 Mill Rd",
         "pc": "av3 4pl", "nhs": "943 476 5919", "crew_manager": "WM Smith", "visited": "01.10.2026"},
        {"visit_ref": "F-2", "occupant": "Patel, Priya", "born": "31.02.1990", "premises": "Flat 1, Oak Court",
         "pc": "NOT A PC", "nhs": "1234567890", "crew_manager": "WM Smith", "visited": "02.10.2026"},
    ]
    path = landing / "safe_and_well_20261101.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    contract = load_contracts(contract_path.parent)["fire_service"]
    frame = read_extract(path, contract)
    mapped = apply_contract(frame, contract, file_sha256="abc", extract_date=contract.extract_date_for(path))
    people = standardise_person_records(mapped.person_record, as_of=dt.date(2026, 11, 1)).sort("record_id")
    first, second = people.to_dicts()
    assert (first["last_name"], first["first_name"], first["middle_names"]) == ("O'BRIEN", "Bill", "James")
    assert first["first_name_formal"] == "william" and first["last_name_std"] == "obrien"
    assert first["date_of_birth"] == dt.date(1950, 3, 2) and first["postcode"] == "AV3 4PL"
    assert first["nhs_number"] == "9434765919"
    assert first["address_tokens"] == ["FLAT", "2", "14", "MILL", "ROAD"]
    assert second["date_of_birth"] is None and "date_of_birth_unparseable" in second["quality_flags"]
    assert second["nhs_number"] is None and "nhs_number_invalid" in second["quality_flags"]
    assert second["postcode"] == "NOT A PC" and "postcode_not_uk" in second["quality_flags"]  # kept as evidence
    assert mapped.involvement.height == 2 and mapped.involvement["agency"].unique().to_list() == ["Fire and Rescue"]


def test_a_related_person_declared_child_of_the_subject_is_staged_as_the_subject_parent_of_them(tmp_path):
    """A claim row naming the claimant's child: the contract says the related person is child_of the subject.
    Staged relationships read one way (as stated relationships are): the claimant parent_of the child, so the
    household's parents and a parent's birth bound see it. A parent related person stays as declared."""
    contract_path = tmp_path / "contracts" / "claims.yaml"
    contract_path.parent.mkdir()
    contract_path.write_text(FIRE_CONTRACT.replace("fire_service", "claims").replace("fire/", "claims/") + """
related_persons:
  - role: child
    record_id_suffix: "-C1"
    relationship: child_of
    person:
      full_name: {column: child}
  - role: parent_carer
    record_id_suffix: "-P1"
    relationship: parent_of
    person:
      full_name: {column: carer}
""")
    landing = tmp_path / "landing" / "claims"
    landing.mkdir(parents=True)
    path = landing / "safe_and_well_20261101.jsonl"
    path.write_text(json.dumps({"visit_ref": "F-1", "occupant": "Shaw, Ann", "born": "02.03.1980", "premises": "1 Mill Rd",
                                "pc": "AV3 4PL", "nhs": "", "crew_manager": "WM Smith", "visited": "01.10.2026",
                                "child": "Tom Shaw", "carer": "Jo Shaw"}) + "\n")
    contract = load_contracts(contract_path.parent)["claims"]
    mapped = apply_contract(read_extract(path, contract), contract, file_sha256="abc",
                            extract_date=contract.extract_date_for(path))
    assert sorted(mapped.stated_relationship.select("record_id", "related_record_id", "relationship").rows()) == [
        ("F-1", "F-1-C1", "parent_of"), ("F-1-P1", "F-1", "parent_of")]
