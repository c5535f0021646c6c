"""import_areas against real PostGIS, with tiny hand-made files near 116.40 E, 39.90 N.

The parents are the test city's district, streets and communities (fixtures/testcity.py):
community 110101001001 spans 116.40–116.42, community 110101002001 116.42–116.43 and
community 110101002002 116.43–116.44, all 39.90–39.92 N.
"""

import json
import math
import shutil
import subprocess
from io import StringIO

import numpy as np
import pytest
import shapely
from django.core.management import CommandError, call_command
from django.urls import reverse

from fixtures.testcity import COMMUNITIES, DISTRICTS, STREETS
from gridgov.accounts.models import Role
from gridgov.areas import coords
from gridgov.areas.importer import areas_import, reading_order
from gridgov.areas.models import LEVELS, Community, District, Grid, ImportRun, Street
from gridgov.areas.services import areas_replace

pytestmark = pytest.mark.django_db

COMMUNITY = "110101001001"


@pytest.fixture
def parents(db):
    for model, rows in ((District, DISTRICTS), (Street, STREETS), (Community, COMMUNITIES)):
        areas_replace(model, rows, source="fixtures/testcity.py", crs="wgs84", actor="tests")


def box(w, s, e, n):
    return [[[w, s], [e, s], [e, n], [w, n], [w, s]]]


def feature(rings, geometry_type="Polygon", **props):
    return {"type": "Feature", "properties": props, "geometry": {"type": geometry_type, "coordinates": rings}}


def write_geojson(path, *features, **extra):
    path.write_text(json.dumps({"type": "FeatureCollection", **extra, "features": list(features)}, ensure_ascii=False))
    return path


def ogr2ogr(src, suffix):
    if shutil.which("ogr2ogr") is None:
        pytest.skip("ogr2ogr not installed (Debian gdal-bin; scripts/install_deps.sh installs it)")
    dst = src.with_suffix(suffix)
    driver = {".shp": ["ESRI Shapefile", "-lco", "ENCODING=UTF-8"], ".gpkg": ["GPKG"]}[suffix]
    subprocess.run(["ogr2ogr", "-f", driver[0], *driver[1:], str(dst), str(src)], check=True, capture_output=True)
    return dst


def import_areas(path, *args):
    out, err = StringIO(), StringIO()
    call_command("import_areas", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def grid_args(*extra, crs="wgs84"):
    return ["--level", "grid", "--crs", crs, *extra]


def snapshot():
    rows = []
    for model in LEVELS.values():
        rows += [(model.LEVEL, *r) for r in model.objects.values_list("code", "version", "valid_to", "name")]
        rows += [(model.LEVEL, g.wkt) for g in model.objects.values_list("geom", flat=True)]
    return sorted(rows, key=str), ImportRun.objects.count()


def current(code):
    return Grid.objects.current().get(code=code)


def shape(geos):
    return shapely.from_wkb(bytes(geos.wkb))


def same_shape(geos, rings, tolerance=1e-9):
    return shapely.equals_exact(
        shapely.normalize(shape(geos)), shapely.normalize(shapely.MultiPolygon([shapely.Polygon(*rings)])), tolerance
    )


# --- good imports ---------------------------------------------------------------------------


def test_geojson_grids_find_their_parents_and_get_codes_in_reading_order(parents, tmp_path):
    # An existing grid numbered 007 in community 110101002001: new ones continue after it.
    areas_replace(
        Grid, [("110101002001007", "旧网格", shapely.box(116.42, 39.90, 116.425, 39.92).wkt)], source="t", crs="wgs84"
    )
    path = write_geojson(
        tmp_path / "grids.geojson",
        feature(box(116.41, 39.90, 116.42, 39.91), name="东南"),  # file order is not code order
        feature(box(116.40, 39.91, 116.41, 39.92), name="西北"),
        feature(box(116.40, 39.90, 116.41, 39.91), name="西南"),
        feature(box(116.41, 39.91, 116.42, 39.92), name="东北"),
        feature(box(116.425, 39.90, 116.43, 39.91), name="乙一南"),
        feature(box(116.425, 39.91, 116.43, 39.92), name="乙一北"),
    )
    out, _ = import_areas(path, *grid_args())
    names = dict(Grid.objects.current().values_list("name", "code"))
    assert names == {
        "西北": "110101001001001",
        "东北": "110101001001002",
        "西南": "110101001001003",
        "东南": "110101001001004",
        "旧网格": "110101002001007",
        "乙一北": "110101002001008",
        "乙一南": "110101002001009",
    }
    g = current("110101001001001")
    assert g.geom.geom_type == "MultiPolygon" and g.geom.srid == 4326 and g.version == 1
    assert same_shape(g.geom, box(116.40, 39.91, 116.41, 39.92))
    run = ImportRun.objects.get(source=str(path))
    assert (run.level, run.crs, run.created, run.changed, run.unchanged) == ("grid", "wgs84", 6, 0, 0)
    assert g.import_run_id == run.pk
    assert run.report["errors"] == [] and run.report["overlaps"] == [] and run.report["outside_parent"] == []
    assert run.report["gaps"] == []  # both communities are tiled exactly
    assert [a["code"] for a in run.report["assigned_codes"]][:2] == ["110101001001004", "110101001001001"]
    assert "ImportRun #" in out and "110101001001004" in out


def test_reading_order_tolerates_ragged_rows():
    cells = [shapely.box(x, y + dy, x + 1, y + 1 + dy) for y in (1, 0) for x, dy in ((0, 0), (1, 0.2), (2, -0.1))]
    assert reading_order(cells[::-1]) == [5, 4, 3, 2, 1, 0]


@pytest.mark.parametrize("suffix", [".shp", ".gpkg"])
def test_shapefile_and_geopackage_import_like_geojson(parents, tmp_path, suffix):
    src = write_geojson(
        tmp_path / "grids.geojson",
        feature(box(116.40, 39.90, 116.41, 39.92), name="甲一第1网格", code="110101001001001"),
        feature(box(116.41, 39.90, 116.42, 39.92), name="甲一第2网格", code="110101001001002"),
    )
    path = ogr2ogr(src, suffix)
    import_areas(path, *grid_args("--code-field", "code"))
    assert dict(Grid.objects.current().values_list("code", "name")) == {
        "110101001001001": "甲一第1网格",
        "110101001001002": "甲一第2网格",
    }
    assert same_shape(current("110101001001002").geom, box(116.41, 39.90, 116.42, 39.92))
    # The same boundaries from GeoJSON (a Shapefile reverses ring order) are not a change.
    import_areas(src, *grid_args("--code-field", "code"))
    assert Grid.objects.count() == 2
    assert ImportRun.objects.get(source=str(src)).unchanged == 2


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_gcj02_and_bd09_input_lands_on_its_wgs84_twin(parents, tmp_path, crs):
    wgs = np.array([(116.401, 39.901), (116.409, 39.902), (116.4095, 39.915), (116.404, 39.918), (116.401, 39.901)])
    lng, lat = coords.from_wgs84(wgs[:, 0], wgs[:, 1], crs)
    path = write_geojson(tmp_path / f"{crs}.geojson", feature([np.column_stack([lng, lat]).tolist()], name="偏移"))
    import_areas(path, *grid_args(crs=crs))
    stored = np.array(current("110101001001001").geom.coords[0][0])
    assert np.abs(stored - wgs).max() < 1e-8  # < 1 mm
    # read as WGS-84 the same numbers would be hundreds of metres off
    assert np.abs(np.column_stack([lng, lat]) - wgs).max() > 1e-3


def test_epsg_input_goes_through_gdal(parents, tmp_path):
    r = 6378137.0
    wgs = box(116.401, 39.901, 116.409, 39.919)[0]
    mercator = [[r * math.radians(x), r * math.log(math.tan(math.pi / 4 + math.radians(y) / 2))] for x, y in wgs]
    path = write_geojson(tmp_path / "m.geojson", feature([mercator], name="墨卡托"))
    import_areas(path, *grid_args(crs="EPSG:3857"))
    assert same_shape(current("110101001001001").geom, [wgs], tolerance=1e-7)


def test_districts_then_streets_with_assigned_codes(db, tmp_path):
    d = write_geojson(tmp_path / "d.geojson", feature(box(116.40, 39.90, 116.44, 39.92), name="测试区", gb="110101"))
    import_areas(d, "--level", "district", "--crs", "cgcs2000", "--code-field", "gb")
    s = write_geojson(
        tmp_path / "s.geojson",
        feature(box(116.42, 39.90, 116.44, 39.92), name="乙街道"),
        feature(box(116.40, 39.90, 116.42, 39.92), name="甲街道"),
    )
    import_areas(s, "--level", "street", "--crs", "wgs84")
    assert dict(Street.objects.values_list("name", "code")) == {"甲街道": "110101001", "乙街道": "110101002"}


def test_parent_field_takes_the_parent_from_the_file(parents, tmp_path):
    path = write_geojson(
        tmp_path / "p.geojson",
        feature(box(116.43, 39.90, 116.44, 39.92), name="乙二第1网格", sq="110101002002"),
    )
    import_areas(path, *grid_args("--parent-field", "sq"))
    assert current("110101002002001").name == "乙二第1网格"


def test_dry_run_reports_and_writes_nothing(parents, tmp_path):
    path = write_geojson(tmp_path / "g.geojson", feature(box(116.40, 39.90, 116.42, 39.92), name="整社区"))
    before = snapshot()
    out, _ = import_areas(path, *grid_args("--dry-run"))
    assert snapshot() == before
    assert "dry run" in out and "created 1" in out and "110101001001001" in out
    run = areas_import(path, "grid", "wgs84", dry_run=True)
    assert run.pk is None and run.created == 1 and run.report["dry_run"] is True


def test_progress_bar_is_drawn_on_stderr(parents, tmp_path):
    path = write_geojson(tmp_path / "g.geojson", feature(box(116.40, 39.90, 116.42, 39.92), name="整社区"))
    out, err = import_areas(path, *grid_args())
    assert "reading" in err and "writing" in err and "reading" not in out


# --- versions -------------------------------------------------------------------------------


def test_reimport_makes_a_new_version_only_for_what_changed(parents, tmp_path):
    first = write_geojson(
        tmp_path / "v1.geojson",
        feature(box(116.40, 39.90, 116.41, 39.92), name="甲一第1网格", code="110101001001001"),
        feature(box(116.41, 39.90, 116.42, 39.92), name="甲一第2网格", code="110101001001002"),
    )
    import_areas(first, *grid_args("--code-field", "code"))
    # grid 001 is redrawn smaller, grid 002 comes again unchanged
    second = write_geojson(
        tmp_path / "v2.geojson",
        feature(box(116.40, 39.90, 116.405, 39.92), name="甲一第1网格", code="110101001001001"),
        feature(box(116.41, 39.90, 116.42, 39.92), name="甲一第2网格", code="110101001001002"),
    )
    import_areas(second, *grid_args("--code-field", "code"))
    v1, v2 = Grid.objects.filter(code="110101001001001").order_by("version")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.valid_to is not None and v1.valid_to == v2.valid_from and v2.valid_to is None
    assert same_shape(v1.geom, box(116.40, 39.90, 116.41, 39.92))  # the old row is untouched
    assert same_shape(v2.geom, box(116.40, 39.90, 116.405, 39.92))
    assert Grid.objects.filter(code="110101001001002").count() == 1
    run = ImportRun.objects.get(source=str(second))
    assert (run.created, run.changed, run.unchanged) == (0, 1, 1)
    assert run.report["gaps"][0]["parent"] == COMMUNITY  # the strip 116.405–116.41 is now uncovered

    before = snapshot()
    import_areas(second, *grid_args("--code-field", "code"))
    rows, runs = snapshot()
    assert rows == before[0] and runs == before[1] + 1
    assert ImportRun.objects.first().unchanged == 2


def test_reimport_without_codes_keeps_codes_by_name(parents, tmp_path):
    path = write_geojson(
        tmp_path / "g.geojson",
        feature(box(116.40, 39.90, 116.41, 39.92), name="西"),
        feature(box(116.41, 39.90, 116.42, 39.92), name="东"),
    )
    import_areas(path, *grid_args())
    write_geojson(
        path,
        feature(box(116.40, 39.90, 116.411, 39.92), name="西"),  # moved its edge east
        feature(box(116.411, 39.90, 116.42, 39.92), name="东"),
    )
    import_areas(path, *grid_args())
    assert sorted(Grid.objects.values_list("code", "version")) == [
        ("110101001001001", 1),
        ("110101001001001", 2),
        ("110101001001002", 1),
        ("110101001001002", 2),
    ]
    assert dict(Grid.objects.current().values_list("name", "code")) == {
        "西": "110101001001001",
        "东": "110101001001002",
    }


# --- bad files ------------------------------------------------------------------------------


def _points(tmp_path):
    return write_geojson(tmp_path / "pts.geojson", feature([116.405, 39.91], "Point", name="点")), []


def _metres(tmp_path):
    # a file in Web Mercator metres, declared as wgs84
    return write_geojson(tmp_path / "m.geojson", feature(box(12957000, 4852000, 12958000, 4853000), name="米")), []


BAD_FILES = {
    "missing file": (lambda p: (p / "nope.geojson", []), "file not found"),
    "not a spatial file": (lambda p: ((p / "x.gpkg").write_text("hello") and p / "x.gpkg", []), "cannot read"),
    "broken json": (lambda p: ((p / "x.geojson").write_text("{oops") and p / "x.geojson", []), "cannot read GeoJSON"),
    "points": (_points, "not a polygon layer"),
    "missing field": (
        lambda p: (
            write_geojson(p / "f.geojson", feature(box(116.40, 39.90, 116.41, 39.92), name="a", code="1")),
            ["--code-field", "bianma"],
        ),
        "available fields: name, code",
    ),
    "unknown layer": (
        lambda p: (
            write_geojson(p / "f.geojson", feature(box(116.40, 39.90, 116.41, 39.92), name="a")),
            ["--layer", "streets"],
        ),
        "layer 'streets' not found",
    ),
    "unknown crs": (
        lambda p: (
            write_geojson(p / "f.geojson", feature(box(116.40, 39.90, 116.41, 39.92), name="a")),
            ["--crs", "mars"],
        ),
        "unknown CRS",
    ),
    "unknown epsg": (
        lambda p: (
            write_geojson(p / "f.geojson", feature(box(116.40, 39.90, 116.41, 39.92), name="a")),
            ["--crs", "EPSG:999999"],
        ),
        "unknown CRS",
    ),
    "projected metres as wgs84": (_metres, "outside China"),
    "lat and lng swapped": (
        lambda p: (write_geojson(p / "f.geojson", feature(box(39.90, 116.40, 39.92, 116.41), name="a")), []),
        "outside China",
    ),
    "empty layer": (lambda p: (write_geojson(p / "e.geojson"), []), "empty layer"),
    "external crs": (
        lambda p: (
            write_geojson(
                p / "c.geojson",
                feature(box(116.40, 39.90, 116.41, 39.92), name="a"),
                crs={"type": "name", "properties": {"name": "/etc/passwd"}},
            ),
            [],
        ),
        "external CRS",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_clearly_and_changes_nothing(parents, tmp_path, case):
    make, expected = BAD_FILES[case]
    path, extra = make(tmp_path)
    before = snapshot()
    args = grid_args() if "--crs" not in extra else ["--level", "grid"]
    with pytest.raises(CommandError, match=expected) as exc:
        import_areas(path, *args, *extra)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(exc.value))  # Chinese as well as English
    assert snapshot() == before


def test_shapefile_without_a_polygon_layer_is_refused(parents, tmp_path):
    path = ogr2ogr(_points(tmp_path)[0], ".shp")
    with pytest.raises(CommandError, match="not a polygon layer.*Point"):
        import_areas(path, *grid_args())


# --- geometry repair and validation ---------------------------------------------------------


def test_invalid_geometry_is_repaired_when_the_area_barely_changes(parents, tmp_path):
    # the last edge crosses the first one 11 m from the corner: a tiny second lobe
    ring = [[116.401, 39.901], [116.409, 39.901], [116.409, 39.919], [116.4011, 39.9009], [116.401, 39.901]]
    assert not shapely.Polygon(ring).is_valid
    path = write_geojson(tmp_path / "g.geojson", feature([ring], name="自交", code="110101001001001"))
    import_areas(path, *grid_args("--code-field", "code"))
    g = current("110101001001001")
    assert g.geom.valid
    [fix] = ImportRun.objects.get(source=str(path)).report["repaired"]
    assert fix["row"] == 1 and fix["reason"].startswith("Self-intersection") and fix["area_change"] < 0.01


def test_invalid_geometry_is_rejected_when_no_repair_keeps_its_area(parents, tmp_path):
    bowtie = [[116.411, 39.901], [116.419, 39.909], [116.419, 39.901], [116.411, 39.909], [116.411, 39.901]]
    path = write_geojson(
        tmp_path / "g.geojson",
        feature(box(116.40, 39.90, 116.41, 39.92), name="好的", code="110101001001001"),
        feature([bowtie], name="蝴蝶结", code="110101001001002"),
    )
    before = snapshot()
    with pytest.raises(CommandError, match="import rejected"):
        import_areas(path, *grid_args("--code-field", "code"))
    assert snapshot() == before  # the good row is not imported either
    with pytest.raises(Exception) as exc:
        areas_import(path, "grid", "wgs84", code_field="code")
    [err] = exc.value.report["errors"]
    assert (err["row"], err["problem"]) == (2, "geometry_rejected") and err["reason"].startswith("Self-intersection")


def test_unclosed_ring_is_an_error_row_naming_the_feature(parents, tmp_path):
    open_ring = [[116.411, 39.901], [116.419, 39.901], [116.419, 39.909], [116.411, 39.909]]
    path = write_geojson(
        tmp_path / "g.geojson",
        feature(box(116.40, 39.90, 116.41, 39.92), name="好的", code="110101001001001"),
        feature([open_ring], name="没闭合", code="110101001001002"),
    )
    before = snapshot()
    out = StringIO()
    with pytest.raises(CommandError, match="import rejected"):
        call_command("import_areas", str(path), *grid_args("--code-field", "code"), stdout=out, stderr=StringIO())
    assert "#2 110101001001002 没闭合: geometry_unreadable — 多边形的环没有闭合" in out.getvalue()
    assert snapshot() == before  # the good row is not imported either
    with pytest.raises(Exception) as exc:
        areas_import(path, "grid", "wgs84", code_field="code")
    assert [(e["row"], e["problem"]) for e in exc.value.report["errors"]] == [(2, "geometry_unreadable")]


def test_overlap_gap_and_outside_parent_are_warnings(parents, tmp_path, settings):
    path = write_geojson(
        tmp_path / "g.geojson",
        feature(box(116.40, 39.90, 116.411, 39.92), name="甲", code="110101001001001"),
        feature(box(116.41, 39.90, 116.419, 39.92), name="乙", code="110101001001002"),  # 116.419–116.42 uncovered
        feature(box(116.435, 39.90, 116.4405, 39.92), name="丙", code="110101002002001"),  # 0.0005° past its parent
    )
    out, _ = import_areas(path, *grid_args("--code-field", "code"))
    assert Grid.objects.count() == 3  # warnings do not stop the import
    report = ImportRun.objects.get(source=str(path)).report
    strip_m2 = 0.001 * 111_320 * math.cos(math.radians(39.91)) * 0.02 * 110_950  # 0.001° × 0.02° ≈ 189,000 m²
    [overlap] = report["overlaps"]
    assert overlap["codes"] == ["110101001001001", "110101001001002"]
    assert overlap["area_m2"] == pytest.approx(strip_m2, rel=0.01)
    [outside] = report["outside_parent"]
    assert (outside["code"], outside["parent"]) == ("110101002002001", "110101002002")
    assert outside["area_m2"] == pytest.approx(strip_m2 / 2, rel=0.01)
    gaps = {g["parent"]: g for g in report["gaps"]}
    assert gaps[COMMUNITY]["area_m2"] == pytest.approx(strip_m2, rel=0.01)
    assert 116.419 < gaps[COMMUNITY]["at"][0] < 116.42
    assert gaps["110101002002"]["area_m2"] == pytest.approx(5 * strip_m2, rel=0.01)
    assert "overlaps between siblings: 1" in out and "gaps between siblings: 2" in out

    settings.IMPORT_TOLERANCE_M2 = 1_000_000  # all of the above are smaller
    report = areas_import(path, "grid", "wgs84", code_field="code", dry_run=True).report
    assert report["overlaps"] == report["outside_parent"] == report["gaps"] == []


def test_overlap_with_an_existing_sibling_counts(parents, tmp_path):
    areas_replace(
        Grid, [("110101001001001", "老", shapely.box(116.40, 39.90, 116.411, 39.92).wkt)], source="t", crs="wgs84"
    )
    path = write_geojson(tmp_path / "g.geojson", feature(box(116.41, 39.90, 116.42, 39.92), name="新"))
    import_areas(path, *grid_args())
    report = ImportRun.objects.get(source=str(path)).report
    assert [o["codes"] for o in report["overlaps"]] == [["110101001001002", "110101001001001"]]


# --- fatal rows -----------------------------------------------------------------------------


def _rejected(path, *args):
    before = snapshot()
    with pytest.raises(CommandError, match="nothing changed"):
        import_areas(path, *args)
    assert snapshot() == before
    try:
        areas_import(
            path,
            "grid",
            "wgs84",
            code_field="code" if "--code-field" in args else None,
            parent_field="sq" if "--parent-field" in args else None,
        )
    except Exception as exc:  # noqa: BLE001 - ImportRejected, checked by its report
        return exc.report["errors"]
    raise AssertionError("not rejected")


def test_duplicate_codes_are_fatal(parents, tmp_path):
    path = write_geojson(
        tmp_path / "g.geojson",
        feature(box(116.40, 39.90, 116.41, 39.92), name="一", code="110101001001001"),
        feature(box(116.41, 39.90, 116.42, 39.92), name="二", code="110101001001001"),
    )
    [err] = _rejected(path, *grid_args("--code-field", "code"))
    assert (err["row"], err["problem"], err["first_row"]) == (2, "duplicate_code", 1)


def test_codes_must_agree_with_the_parent_found_and_children_need_a_parent(parents, tmp_path):
    path = write_geojson(
        tmp_path / "g.geojson",
        feature(box(116.40, 39.90, 116.41, 39.92), name="错社区", code="110101002001001"),  # lies in 110101001001
        feature(box(116.50, 39.90, 116.51, 39.92), name="城外", code="110101001001009"),  # 5 km east of everything
        feature(box(116.41, 39.90, 116.42, 39.92), name="短码", code="1101010010010"),
    )
    errors = _rejected(path, *grid_args("--code-field", "code"))
    assert [(e["row"], e["problem"]) for e in errors] == [(1, "parent_mismatch"), (2, "no_parent"), (3, "bad_code")]
    assert errors[0]["parent"] == COMMUNITY


def test_unknown_declared_parent_is_fatal(parents, tmp_path):
    path = write_geojson(
        tmp_path / "g.geojson", feature(box(116.40, 39.90, 116.41, 39.92), name="孤儿", sq="110101009009")
    )
    [err] = _rejected(path, *grid_args("--parent-field", "sq"))
    assert err["problem"] == "no_parent" and "110101009009" in err["message"]


# --- admin ----------------------------------------------------------------------------------


def test_admin_edit_makes_a_new_version(city, client, make_user):
    admin_user = make_user(Role.ADMIN, is_staff=True)
    client.force_login(admin_user)
    old = current("110101001001001")
    url = reverse("admin:areas_grid_change", args=[old.pk])
    page = client.get(url)
    assert page.status_code == 200 and b"id_geom" in page.content
    wkt = "SRID=4326;MULTIPOLYGON(((116.40 39.90,116.405 39.90,116.405 39.92,116.40 39.92,116.40 39.90)))"
    r = client.post(url, {"name": "甲一第1网格（调整）", "geom": wkt})
    assert r.status_code == 302, r.content.decode()[:2000]
    old.refresh_from_db()
    new = current("110101001001001")
    assert (
        old.valid_to is not None
        and old.name == "甲一第1网格"
        and same_shape(old.geom, box(116.40, 39.90, 116.41, 39.92))
    )
    assert (new.version, new.name) == (2, "甲一第1网格（调整）")
    assert same_shape(new.geom, box(116.40, 39.90, 116.405, 39.92))
    run = ImportRun.objects.get(pk=new.import_run_id)
    assert (run.source, run.actor, run.level, run.changed) == ("admin", admin_user.username, "grid", 1)
    assert run.report["fields"] == ["geom", "name"]

    # the closed version is history: posting to it changes nothing
    before = snapshot()
    client.post(reverse("admin:areas_grid_change", args=[old.pk]), {"name": "改历史", "geom": wkt})
    assert snapshot() == before


def test_admin_non_editor_cannot_change_boundaries(city, client, make_user):
    client.force_login(make_user(Role.STREET_OFFICE, area_code="110101001", is_staff=True))
    grid = current("110101001001001")
    before = snapshot()
    client.post(
        reverse("admin:areas_grid_change", args=[grid.pk]),
        {"name": "越权", "geom": "SRID=4326;MULTIPOLYGON(((116.40 39.90,116.401 39.90,116.401 39.91,116.40 39.90)))"},
    )
    assert snapshot() == before
    # outside the street's jurisdiction the grid is not even found
    other = current("110101002001001")
    assert client.get(reverse("admin:areas_grid_change", args=[other.pk])).status_code in (302, 404)
