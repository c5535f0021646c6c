"""import_places: CSV and GeoJSON, CRS conversion, re-import updates instead of doubling."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from gridgov.areas import coords
from gridgov.audit.services import audit_verify
from gridgov.places.models import Place

pytestmark = pytest.mark.django_db


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_in_gcj02_is_stored_in_wgs84_with_its_grid(city, tmp_path):
    glng, glat = (float(v) for v in coords.wgs84_to_gcj02(116.405, 39.91))
    path = write(
        tmp_path,
        "places.csv",
        "name,kind,lng,lat,address,aliases\n"
        f"阳光花园小区,小区,{glng},{glat},测试区阳光花园,向阳花园|阳光小区\n"
        f"文化路,road,{glng + 0.02},{glat},,\n",
    )
    out = StringIO()
    call_command("import_places", path, crs="gcj02", stdout=out)
    assert "created 2" in out.getvalue()
    sun = Place.objects.get(name="阳光花园小区")
    assert sun.kind == "compound" and sun.aliases == ["向阳花园", "阳光小区"]
    assert abs(sun.point.x - 116.405) < 1e-6 and abs(sun.point.y - 39.91) < 1e-6
    assert sun.grid_code == "110101001001001"
    assert Place.objects.get(name="文化路").kind == "road"
    # Again: same places, nothing doubled.
    call_command("import_places", path, crs="gcj02", stdout=StringIO())
    assert Place.objects.count() == 2
    assert audit_verify() == []


def test_geojson_points_polygons_and_lines(city, tmp_path):
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"名称": "实验小学", "kind": "poi"},
                "geometry": {"type": "Point", "coordinates": [116.438, 39.915]},
            },
            {
                "type": "Feature",
                "properties": {"名称": "幸福里小区", "kind": "小区", "aliases": ["幸福里"]},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[116.431, 39.905], [116.434, 39.905], [116.434, 39.908], [116.431, 39.908], [116.431, 39.905]]
                    ],
                },
            },
            {
                "type": "Feature",
                "properties": {"名称": "文化路"},
                "geometry": {"type": "LineString", "coordinates": [[116.421, 39.905], [116.429, 39.905]]},
            },
        ],
    }
    path = write(tmp_path, "places.geojson", json.dumps(fc, ensure_ascii=False))
    call_command("import_places", path, crs="wgs84", name_field="名称", stdout=StringIO())
    compound = Place.objects.get(name="幸福里小区")
    assert compound.polygon is not None and compound.polygon.contains(compound.point)
    assert compound.grid_code == "110101002002001" and compound.aliases == ["幸福里"]
    road = Place.objects.get(name="文化路")
    assert road.kind == "road" and abs(road.point.x - 116.425) < 1e-9 and road.grid_code == "110101002001001"


def test_bad_rows_refuse_the_file_unless_skipped(city, tmp_path):
    path = write(
        tmp_path, "bad.csv", "name,kind,lng,lat\n好地方,poi,116.405,39.91\n,poi,116.41,39.91\n坏坐标,poi,abc,39.9\n"
    )
    with pytest.raises(CommandError, match="2 bad rows"):
        call_command("import_places", path, crs="wgs84", stdout=StringIO(), stderr=StringIO())
    assert not Place.objects.exists()
    call_command("import_places", path, crs="wgs84", skip_bad=True, stdout=StringIO(), stderr=StringIO())
    assert list(Place.objects.values_list("name", flat=True)) == ["好地方"]


def test_missing_columns_and_unknown_files(city, tmp_path):
    with pytest.raises(CommandError, match="missing columns"):
        call_command("import_places", write(tmp_path, "x.csv", "name,x,y\na,1,2\n"), crs="wgs84")
    with pytest.raises(CommandError, match=r"\.csv or \.geojson"):
        call_command("import_places", write(tmp_path, "x.kml", "<kml/>"), crs="wgs84")


# --- broken files and ragged rows (#11) ------------------------------------------------------


def test_an_oversized_cell_is_refused_naming_line_and_column(city, tmp_path):
    path = write(
        tmp_path,
        "big.csv",
        f"name,kind,lng,lat,address\n好地方,poi,116.405,39.91,\n坏地方,poi,116.41,39.91,{'长' * 140_000}\n",
    )
    with pytest.raises(CommandError) as exc:
        call_command("import_places", path, crs="wgs84", skip_bad=True, stdout=StringIO(), stderr=StringIO())
    assert "big.csv" in str(exc.value) and "第 3 行" in str(exc.value) and "「address」" in str(exc.value)
    assert not Place.objects.exists()


def test_rows_of_the_wrong_width_are_bad_rows(city, tmp_path):
    path = write(
        tmp_path,
        "ragged.csv",
        "name,kind,lng,lat\n好地方,poi,116.405,39.91\n多一列,poi,116.41,39.91,多余\n少一列,poi,116.41\n",
    )
    err = StringIO()
    with pytest.raises(CommandError, match="2 行有误.*2 bad rows"):
        call_command("import_places", path, crs="wgs84", stdout=StringIO(), stderr=err)
    assert "line 3: 列数不符：表头 4 列，本行 5 列" in err.getvalue() and "line 4: 列数不符" in err.getvalue()
    assert not Place.objects.exists()
    call_command("import_places", path, crs="wgs84", skip_bad=True, stdout=StringIO(), stderr=StringIO())
    assert list(Place.objects.values_list("name", flat=True)) == ["好地方"]


def test_gbk_csv_is_read(city, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("name,kind,lng,lat\n阳光花园小区,小区,116.405,39.91\n".encode("gbk"))
    call_command("import_places", str(path), crs="wgs84", stdout=StringIO())
    assert Place.objects.get().name == "阳光花园小区"


def test_unclosed_polygon_ring_is_a_bad_row(city, tmp_path):
    ring = [[116.431, 39.905], [116.434, 39.905], [116.434, 39.908], [116.431, 39.908]]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "开环小区"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            },
            {
                "type": "Feature",
                "properties": {"name": "实验小学"},
                "geometry": {"type": "Point", "coordinates": [116.438, 39.915]},
            },
        ],
    }
    path = write(tmp_path, "open.geojson", json.dumps(fc, ensure_ascii=False))
    err = StringIO()
    with pytest.raises(CommandError, match="1 bad rows"):
        call_command("import_places", path, crs="wgs84", stdout=StringIO(), stderr=err)
    assert "feature 1: 多边形的环没有闭合" in err.getvalue() and not Place.objects.exists()
