"""A new agency's contract for tests of onboarding: a CSV of references, forenames, surnames, dates of birth
(%d/%m/%Y) and postcodes, named extract_YYYYMMDD; `replace` edits its text (old → new, each must be there)."""

CONTRACT = """source: {source}
agency: New Agency
file_pattern: "{folder}/extract_*.csv"
format: csv
record_key: ref
extract_date: {{from_file_name: 'extract_(?P<date>\\d{{8}})'}}
trust_rank: 3
sharing: {{owning_organisation: Test, lawful_basis: test, retention_days: 365}}
person:
  forenames: {{column: first}}
  last_name: {{column: surname}}
  date_of_birth: {{column: dob, formats: ["%d/%m/%Y"]}}
  postcode: {{column: postcode}}
"""


def new_agency_contract(source="newagency", folder="new", **replace) -> str:
    text = CONTRACT.format(source=source, folder=folder)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text
