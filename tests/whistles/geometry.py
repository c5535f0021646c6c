"""Test polygons and weights built independently of gridgov.whistles, to compare against."""

import numpy as np
import shapely


def lattice_queen(rows, cols):
    """Queen neighbours of a rows × cols lattice, row-major, by index arithmetic."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    out = []
    for i in range(rows * cols):
        near = (np.abs(r - r[i]) <= 1) & (np.abs(c - c[i]) <= 1)
        near[i] = False
        out.append(np.flatnonzero(near))
    return out


def neighbours_of(w):
    """Neighbour index lists in w.id_order from a libpysal W."""
    m = w.sparse.tocsr()
    return np.split(m.indices, m.indptr[1:-1])


def voronoi_cells(n, seed, bounds=(0.0, 0.0, 1.0, 1.0)):
    """n irregular polygons tiling `bounds`: Voronoi cells of random points, clipped.
    Returns (cells, generating points in cell order)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    points = rng.uniform([x0, y0], [x1, y1], size=(n, 2))
    frame = shapely.box(*bounds)
    cells = [c.intersection(frame) for c in shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=frame).geoms]
    # voronoi_polygons does not promise input order: find each cell's own point.
    order = [int(np.flatnonzero(shapely.contains_xy(cell, points[:, 0], points[:, 1]))[0]) for cell in cells]
    return cells, points[order]


def shapely_queen(polygons):
    """Queen contiguity by shapely: any shared point (edge or single vertex) makes neighbours."""
    tree = shapely.STRtree(polygons)
    a, b = tree.query(polygons, predicate="intersects")
    keep = a != b
    a, b = a[keep], b[keep]
    return [np.sort(b[a == i]) for i in range(len(polygons))]
