"""The parser of every JSON request body (DEFAULT_PARSER_CLASSES). Its own module: DRF reads
that setting while importing rest_framework.views, which gridgov.api imports."""

import re

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# JSON nests no deeper than this in any request this API takes (a GeoJSON MultiPolygon inside
# an object is 6). Deeper bodies are refused before any code walks them: Python's own
# recursion limit (~1,000) is otherwise reached by whatever recurses over the data first.
JSON_MAX_DEPTH = 32
_JSON_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


def json_depth_exceeds(body, limit=JSON_MAX_DEPTH):
    """Whether well-formed JSON `body` nests deeper than `limit`. Read from the brackets left
    once strings are cut out, peeling one level of empty pairs per pass: a few passes over
    the bytes in C (a 100,000-point locate body: ~10 ms; walking the parsed lists: ~50 ms)."""
    brackets = _JSON_STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _EMPTY_PAIR.sub(b"", brackets)
    return bool(brackets)


class StrictJSONParser(JSONParser):
    """Every JSON request body, read by orjson. Whatever is wrong with a body (not JSON, not
    UTF-8, lone surrogates, NaN, nested too deep) is a ParseError, so a 400 with a message,
    never a 500 from code further on."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):
                raise self.too_deep() from None
            if "UTF-8" in str(exc) or "surrogate" in str(exc):
                raise ParseError(f"请求体不是有效的 UTF-8 文本 / the body is not valid UTF-8: {exc}") from None
            raise ParseError(f"请求体不是有效的 JSON：{exc} / JSON parse error - {exc}") from None
        except RecursionError:  # not expected from orjson; a 500 for a body must never happen
            raise self.too_deep() from None
        if isinstance(data, (dict, list)) and json_depth_exceeds(body):
            raise self.too_deep()
        return data

    @staticmethod
    def too_deep():
        return ParseError(f"JSON 嵌套超过 {JSON_MAX_DEPTH} 层 / JSON nested deeper than {JSON_MAX_DEPTH} levels")
