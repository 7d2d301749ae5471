"""The platform's HTTP basics, in process: 405 with `Allow`, control characters refused, fields named, docs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from casebook_platform.auth import MaybeUser
from casebook_platform.errors import install_error_handlers
from casebook_platform.openapi import PARAM_PATTERN, TEXT_PATTERN, install_contract


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, pattern=TEXT_PATTERN)


def _app() -> FastAPI:
    app = FastAPI(title="t")
    app.state.verifier = None
    install_error_handlers(app)
    router = APIRouter(prefix="/v1")

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: str, user: MaybeUser, q: Annotated[str | None, Query(max_length=10)] = None
                        ) -> dict[str, str]:
        return {"id": thing_id}

    @router.patch("/things/{thing_id}", status_code=200)
    async def patch_thing(thing_id: str, body: Body) -> dict[str, str]:
        return {"id": thing_id, "title": body.title}

    @router.delete("/things/{thing_id}", status_code=204)
    async def delete_thing(thing_id: str) -> None:
        return None

    app.include_router(router)
    install_contract(app, errors={("GET", "/v1/things/{thing_id}"): {404: ["not_found"]}},
                     links={("PATCH", "/v1/things/{thing_id}", 200): {
                         "Get": ("GET", "/v1/things/{thing_id}", {"thing_id": "$request.path.thing_id"})}})
    return app


def test_405_names_every_method_of_the_path() -> None:
    r = TestClient(_app()).request("TRACE", "/v1/things/a")
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, PATCH"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_control_characters_in_path_and_query_are_refused_with_the_parameter_named() -> None:
    c = TestClient(_app())
    r = c.get("/v1/things/a%00b")
    assert r.status_code == 422 and r.json()["error"] == {
        "code": "invalid_request", "message": "thing_id: control characters are not allowed"}
    r = c.get("/v1/things/a", params={"q": "x\x1fy"})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("q: ")
    assert c.get("/v1/things/%C2%85").status_code == 422  # C1 control (NEL)
    assert c.get("/v1/things/caf%C3%A9").status_code == 200  # non-ASCII text is fine


def test_validation_errors_name_the_field() -> None:
    c = TestClient(_app())
    r = c.patch("/v1/things/a", json={"title": "a\x00"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request" and r.json()["error"]["message"].startswith("title: ")
    r = c.patch("/v1/things/a", json={"title": "x", "extra": 1})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("extra: ")
    r = c.patch("/v1/things/a", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["error"]["code"] in ("bad_request", "invalid_request")


def test_document_carries_errors_auth_patterns_and_links() -> None:
    doc = TestClient(_app()).get("/openapi.json").json()
    get = doc["paths"]["/v1/things/{thing_id}"]["get"]
    assert get["operationId"] == "get_thing"
    assert get["security"] == [{}, {"bearer": []}]
    assert set(get["responses"]) == {"200", "401", "404", "422"}
    code = get["responses"]["404"]["content"]["application/json"]["schema"]["properties"]["error"]
    assert code["properties"]["code"]["enum"] == ["not_found"]
    assert all(p["schema"].get("pattern") == PARAM_PATTERN or
               any(b.get("pattern") == PARAM_PATTERN for b in p["schema"].get("anyOf", []))
               for p in get["parameters"])
    patch = doc["paths"]["/v1/things/{thing_id}"]["patch"]
    assert "security" not in patch and "401" not in patch["responses"]
    assert patch["responses"]["200"]["links"]["Get"]["operationId"] == "get_thing"
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_docs_page_loads_its_assets_from_the_platform() -> None:
    c = TestClient(_app())
    html = c.get("/docs").text
    assert "cdn." not in html and "/docs-assets/swagger-ui-bundle.js" in html
    assert c.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert c.get("/docs-assets/swagger-ui.css").status_code == 200
