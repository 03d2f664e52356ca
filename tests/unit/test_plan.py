import pytest

from dawexport.instrument import axis_crossfades
from dawexport.render.plan import blend_points, key_zones, velocity_layers


def test_line_blend_weights():
    points = blend_points(["cat", "flute"], 3)
    assert [dict(p.weights) for p in points] == [{"cat": 1.0, "flute": 0.0}, {"cat": 0.5, "flute": 0.5},
                                                 {"cat": 0.0, "flute": 1.0}]
    assert [p.label for p in points] == ["cat", "cat50+flute50", "flute"]


def test_square_blend_is_bilinear_and_sums_to_one():
    points = blend_points(["a", "b", "c", "d"], 3)
    assert len(points) == 9
    for p in points:
        assert sum(w for _, w in p.weights) == pytest.approx(1.0)
    centre = dict(points[4].weights)
    assert all(w == pytest.approx(0.25) for w in centre.values())
    assert dict(points[2].weights)["b"] == 1.0 and points[2].grid_index == (2, 0)
    assert dict(points[6].weights)["c"] == 1.0 and points[6].grid_index == (0, 2)


def test_single_corner_is_one_point():
    [point] = blend_points(["flute"], 5)
    assert point.weights == (("flute", 1.0),)


def test_key_zones_cover_range_without_gaps_with_middle_roots():
    zones = key_zones(48, 84, 3)
    assert zones[0].lokey == 48 and zones[-1].hikey == 84
    for a, b in zip(zones, zones[1:]):
        assert b.lokey == a.hikey + 1
    assert all(z.lokey <= z.root <= z.hikey and z.root - z.lokey <= 1 for z in zones)
    assert key_zones(60, 60, 12)[0].root == 60


def test_velocity_layers_split_evenly_and_render_at_the_top():
    layers = velocity_layers(3)
    assert [(v.lovel, v.hivel) for v in layers] == [(1, 42), (43, 85), (86, 127)]
    assert [v.velocity for v in layers] == [42, 85, 127]
    assert velocity_layers(1)[0].lovel == 1 and velocity_layers(1)[0].hivel == 127


def test_axis_crossfades_are_ordered_and_span_the_knob():
    for n in (2, 3, 5, 16):
        ranges = axis_crossfades(n)
        assert ranges[0][:2] == (0, 0) and ranges[-1][2:] == (127, 127)
        for in_lo, in_hi, out_lo, out_hi in ranges:
            assert 0 <= in_lo <= in_hi <= out_lo <= out_hi <= 127
        for a, b in zip(ranges, ranges[1:]):  # neighbours cross exactly where one fades out and the next in
            assert (a[2], a[3]) == (b[0], b[1])
