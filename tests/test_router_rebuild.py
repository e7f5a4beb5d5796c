"""A Router.query reading several pages while the file is rebuilt: the next page's token is from
the old build (FAILED_PRECONDITION, STALE_PAGE_TOKEN), so the read starts again from the first
page on the new build, once; the result comes wholly from the new build; a second rebuild during
the read is raised."""

import shutil

import duckdb
import pytest

from builders import engine
from cytoatlas.client import CytoAtlasError, Router
from cytoatlas.serving.config import Settings
from cytoatlas.serving.server import start_server

TABLE = "tahoe_drug_effect"
PAGE = 300


@pytest.fixture
def served(built, source_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    path = data / "perturbation_data.duckdb"
    shutil.copy(built["perturbation"], path)
    server = start_server("perturbation", Settings(db=str(path), port=0, reload_poll_seconds=0,
                                                   arrow_default_limit=PAGE, request_log="off"))

    def rebuild() -> None:  # a real rebuild of one table: a new build id for the whole file
        engine.build_domain("perturbation", source_dir, data, tables=["parse10m_cytokine_metadata"],
                            log=lambda line: None)
        assert server.files.check()

    try:
        yield server, path, rebuild
    finally:
        server.stop(0)


def rebuild_after_first_pages(router, rebuild, times: int) -> list:
    """Rebuild the file right after the first page of each of the first `times` reads."""
    first_pages = []
    query_page = router._query_page

    def page(domain, request):
        answer = query_page(domain, request)
        if not request.page_token:
            first_pages.append(answer[0].num_rows)
            if len(first_pages) <= times:
                rebuild()
        return answer

    router._query_page = page
    return first_pages


def test_a_rebuild_between_pages_restarts_the_read_once_on_the_new_build(served, addresses):
    server, path, rebuild = served
    with Router({**addresses, "perturbation": f"127.0.0.1:{server.port}"}) as router:
        build_before = router.database_info("perturbation").build_id
        first_pages = rebuild_after_first_pages(router, rebuild, times=1)
        table = router.query(TABLE)
        build_after = router.database_info("perturbation").build_id
    assert build_after != build_before and len(first_pages) == 2  # read, interrupted, read again
    with duckdb.connect(str(path), read_only=True) as local:
        expected = local.sql(f"SELECT * FROM {TABLE}").to_arrow_table()
        assert local.sql("SELECT build_id FROM _cytoatlas_manifest").fetchall()[0][0] == build_after
    assert table.num_rows == expected.num_rows > 2 * PAGE  # several pages, none missing or twice
    assert table.to_pylist() == expected.to_pylist()


def test_a_second_rebuild_during_the_read_is_raised(served, addresses):
    server, _, rebuild = served
    with Router({**addresses, "perturbation": f"127.0.0.1:{server.port}"}) as router:
        first_pages = rebuild_after_first_pages(router, rebuild, times=2)
        with pytest.raises(CytoAtlasError) as info:
            router.query(TABLE)
    assert info.value.reason == "STALE_PAGE_TOKEN" and info.value.code.name == "FAILED_PRECONDITION"
    assert len(first_pages) == 2
