"""Jobs, candidates, and CSV import: encodings, delimiters, mapping, bad rows, duplicates."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Candidate, CandidateImport, Job, Role


@pytest.fixture
def recruiter(factories, login_as):
    org = factories.make_org("Acme")
    login_as(factories.make_user(org, Role.RECRUITER), org)
    return org


def _upload(post, data: bytes, name: str = "people.csv"):
    return post(
        "/candidates/import", {"file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )


def _import(
    post, client, run_worker, data: bytes, on_duplicate: str = "skip", mapping: dict | None = None
) -> CandidateImport:
    response = _upload(post, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    url = response.location
    page = client.get(url).get_data(as_text=True)
    selects = dict(
        re.findall(r'name="(col-\d+)".*?<option value="([^"]+)"[^>]*selected', page, re.S)
    )
    response = post(url, {**selects, **(mapping or {}), "on_duplicate": on_duplicate})
    assert response.status_code == 302, response.get_data(as_text=True)
    run_worker()
    db.session.expire_all()
    return db.session.scalars(select(CandidateImport).order_by(CandidateImport.id.desc())).first()


GOOD = (
    "Email,First name,Last name,Time zone,Tags,Portfolio\n"
    "ada@example.com,Ada,Lovelace,Europe/London,backend;shortlist,https://ada.example\n"
    "not-an-email,Bad,Row,,,\n"
    "grace@example.com,Grace,Hopper,Mars/Olympus,,\n"
    "alan@example.com,Alan,Turing,,backend,\n"
    "ADA@example.com,Ada,Again,,,\n"
)


def test_import_reports_bad_rows_and_imports_good_ones(recruiter, client, post, run_worker):
    item = _import(post, client, run_worker, GOOD.encode())
    assert (item.status, item.total_rows, item.imported, item.failed) == ("done", 5, 2, 3)
    url = f"/candidates/imports/{item.id}/progress"
    polled = client.get(url, headers={"HX-Request": "true"}).text  # the last poll retitles
    assert '<h1 id="import-title" hx-swap-oob="true">Imported people.csv</h1>' in polled
    full = client.get(url).text
    assert '<h1 id="import-title">Imported people.csv</h1>' in full and "hx-swap-oob" not in full
    people = {c.email: c for c in db.session.scalars(select(Candidate))}
    assert set(people) == {"ada@example.com", "alan@example.com"}
    ada = people["ada@example.com"]
    assert ada.tags == ["backend", "shortlist"] and ada.custom == {
        "portfolio": "https://ada.example"
    }
    assert ada.timezone == "Europe/London"
    page = client.get(f"/candidates/imports/{item.id}/progress").get_data(as_text=True)
    assert "Invalid email address" in page and "Unknown time zone" in page
    assert "Duplicate of line 2 in this file." in page
    report = client.get(f"/candidates/imports/{item.id}/problems.csv").get_data(as_text=True)
    assert report.splitlines()[0].startswith("line,reason,Email")
    assert report.splitlines()[1].startswith("3,")


@pytest.mark.parametrize(
    "data",
    [
        "email;name\nzoé@example.com;Zoé Durand\n".encode("latin-1"),
        "\ufeffemail;name\nzoe@example.com;Zoé Durand\n".encode(),
        "email\tname\nzoe@example.com\tZoé Durand\n".encode(),
    ],
)
def test_encodings_and_delimiters(recruiter, client, post, run_worker, data):
    item = _import(post, client, run_worker, data)
    assert item.status == "done"
    people = db.session.scalars(select(Candidate)).all()
    if item.imported:
        assert people[0].first_name == "Zoé" and people[0].last_name == "Durand"
    else:  # zoé@ is not ASCII: refused by the SMTP-safe address check, with a reason
        assert item.failed == 1


def test_duplicates_against_existing_skip_or_update(recruiter, factories, client, post, run_worker):
    factories.make_candidate(recruiter, email="ada@example.com", first_name="Old")
    data = b"email,first name\nada@example.com,New\nbob@example.com,Bob\n"
    item = _import(post, client, run_worker, data, on_duplicate="skip")
    assert (item.imported, item.skipped, item.updated) == (1, 1, 0)
    assert (
        db.session.scalars(
            select(Candidate.first_name).where(Candidate.email == "ada@example.com")
        ).one()
        == "Old"
    )
    item = _import(post, client, run_worker, data, on_duplicate="update")
    assert (item.imported, item.updated) == (0, 2)
    assert (
        db.session.scalars(
            select(Candidate.first_name).where(Candidate.email == "ada@example.com")
        ).one()
        == "New"
    )


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00binary", "not a CSV"),
        (b"\n\n", "The file is empty."),
        (b"email,first_name\r\n", "has no candidates under them"),
        (b"email,first_name\n\n,\n", "has no candidates under them"),
    ],
)
def test_unusable_files_are_refused_clearly(recruiter, post, data, message):
    response = _upload(post, data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.session.scalars(select(CandidateImport)).all() == []


def test_no_file_chosen_says_so(recruiter, post):
    response = post("/candidates/import", {}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose a CSV file to import." in response.get_data(as_text=True)


def test_tags_too_long_or_too_many_are_refused_not_cut(recruiter, factories, client, post):
    ada = factories.make_candidate(recruiter, email="ada@example.com", tags=["backend"])
    url = f"/candidates/{ada.id}"
    response = post(url, {"tags": "shortlist, " + "x" * 41})
    assert response.status_code == 400
    assert "at most 40 characters" in response.get_data(as_text=True)
    response = post(url, {"tags": ", ".join(f"t{n}" for n in range(21))})
    assert "At most 20 tags per candidate (21 given)" in response.get_data(as_text=True)
    db.session.refresh(ada)
    assert ada.tags == ["backend"]  # nothing stored was lost
    assert post(url, {"tags": " shortlist,backend, shortlist "}).status_code == 302
    db.session.refresh(ada)
    assert ada.tags == ["backend", "shortlist"]


def test_mapping_needs_an_email_column(recruiter, client, post):
    response = _upload(post, b"name,phone\nAda,123\n")
    url = response.location
    response = post(url, {"col-0": "first_name", "col-1": "phone"})
    assert response.status_code == 400
    assert "Choose the column that holds the email address." in response.get_data(as_text=True)


def test_oversized_upload_is_413(app, recruiter, post):
    app.config["MAX_CONTENT_LENGTH"], old = 1000, app.config["MAX_CONTENT_LENGTH"]
    try:
        response = _upload(post, b"email\n" + b"a@example.com\n" * 200)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)


def test_formula_cells_are_neutralised_on_export(recruiter, client, post, run_worker):
    data = b"email,=HYPERLINK(1)\n\"=cmd|' /C calc'!A0\",Evil\n"
    item = _import(post, client, run_worker, data)
    report = client.get(f"/candidates/imports/{item.id}/problems.csv").get_data(as_text=True)
    assert "'=cmd|" in report and "\n2,Invalid" in report.replace("\r\n", "\n")
    assert "'=HYPERLINK" in report.splitlines()[0]  # the header row too


def test_search_and_tag_filter(recruiter, factories, client):
    factories.make_candidate(recruiter, email="ada@example.com", first_name="Ada", tags=["backend"])
    factories.make_candidate(recruiter, email="bob@example.com", first_name="Bob", tags=["design"])
    page = client.get("/candidates/?q=ada").get_data(as_text=True)
    assert "ada@example.com" in page and "bob@example.com" not in page
    page = client.get("/candidates/?tag=design").get_data(as_text=True)
    assert "bob@example.com" in page and "ada@example.com" not in page
    fragment = client.get("/candidates/?q=bob", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    factories.make_candidate(recruiter, email="first_last@example.com", first_name="Fi")
    page = client.get("/candidates/", query_string={"q": "t_l"}).text  # "_" is itself
    assert "first_last@example.com" in page and "ada@example.com" not in page
    assert "ada@example.com" not in client.get("/candidates/", query_string={"q": "%"}).text


def test_jobs_crud_and_archive(recruiter, client, post):
    response = post(
        "/jobs/new",
        {"title": "Data Engineer", "interview_format": "Video call", "duration_minutes": 60},
    )
    assert response.status_code == 302
    job = db.session.scalars(select(Job)).one()
    assert (
        post("/jobs/new", {"title": "", "interview_format": "x", "duration_minutes": 1}).status_code
        == 400
    )
    post(f"/jobs/{job.id}/archive")
    assert ">Data Engineer</a>" not in client.get("/jobs/").get_data(as_text=True)
    assert ">Data Engineer</a>" in client.get("/jobs/?archived=1").get_data(as_text=True)


def test_job_custom_fields_reach_templates(recruiter, client, post):
    response = post(
        "/jobs/new",
        {
            "title": "SRE",
            "interview_format": "Video call",
            "duration_minutes": 45,
            "custom_text": "salary_band: B3",
        },
    )
    assert response.status_code == 302
    job = db.session.scalars(select(Job)).one()
    assert job.custom == {"salary_band": "B3"}
    bad = post(
        "/jobs/new",
        {
            "title": "X",
            "interview_format": "Video call",
            "duration_minutes": 45,
            "custom_text": "no colon here",
        },
    )
    assert bad.status_code == 400 and "name: value" in bad.get_data(as_text=True)
    from app.mail.compose import check_source

    check_source("{{ job.salary_band }}", "html")  # allowed in templates
