# ruff: noqa: E501 - template text reads best unwrapped
"""Template bombs: sources a signed-up owner could save as a template to make a render take
memory or time without bound. Each must be refused by the sandbox with a clear message, cheaply
(tests/test_template_bombs.py in-process, bench/template_bombs.py in a fresh process each).

Each entry is (name, source). Values are built up to just under the old per-value bounds where
that made the bomb worse.
"""

from __future__ import annotations

_BIG = '{% set s = "x" * 999999 %}'
_TEN = _BIG + "{% set t = [s, s, s, s, s, s, s, s, s, s] %}"
_DEEP = (
    _TEN
    + "{% set u = [t, t, t, t, t, t, t, t, t, t] %}{% set v = [u, u, u, u, u, u, u, u, u, u] %}"
)

_TWO = _BIG + '{% set t = "x" * 999998 ~ "y" %}'
_DOUBLED = "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(60) %}{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}"
_DOUBLED_TUPLE = "{% set ns = namespace(a=(1,)) %}{% for i in range(60) %}{% set ns.a = (ns.a, ns.a) %}{% endfor %}"

BOMBS: list[tuple[str, str]] = [
    # filters that grow their input
    ("replace", '{{ ("a" * 5000)|replace("a", "b" * 100000)|length }}'),
    ("indent", '{{ ("x\\n" * 499999)|indent(1000)|length }}'),
    ("indent_string", '{{ ("x\\n" * 499999)|indent("y" * 100)|length }}'),
    ("center", '{{ "x"|center(10**8)|length }}'),
    ("wordwrap", '{{ ("x " * 200000)|wordwrap(1, wrapstring="y" * 1000)|length }}'),
    ("join_range", '{{ range(50000)|join("x" * 10000)|length }}'),
    ("join_refs", _TEN + "{{ t|join|length }}"),
    (
        "format_filter",
        _TEN + '{{ "%s%s%s%s%s%s%s%s%s%s"|format(s, s, s, s, s, s, s, s, s, s)|length }}',
    ),
    ("format_width", '{{ "%100000000s"|format(1)|length }}'),
    ("truncate_end", '{{ "abc"|truncate(1, end="x" * 999999)|length }}'),
    ("urlize", '{{ ("http://a.b " * 80000)|urlize(target="x" * 1000)|length }}'),
    ("tojson_refs", _DEEP + "{{ v|tojson|length }}"),
    ("tojson_indent", "{{ [[[[1]]]]|tojson(indent=100000000)|length }}"),
    ("tojson_escapes", '{{ ("<" * 999999)|tojson|length }}'),
    ("pprint_refs", _DEEP + "{{ v|pprint|length }}"),
    ("string_refs", _DEEP + "{{ v|string|length }}"),
    ("batch_fill", '{{ [1]|batch(100000000, "x")|list|length }}'),
    ("slice_many", "{{ [1]|slice(100000000)|list|length }}"),
    ("list_of_chars", '{{ ("x" * 999999)|list|length }}'),
    ("sort_mapped", '{{ range(100000)|map("center", 1000)|sort|length }}'),
    ("map_replace", '{{ range(100000)|map("replace", "", "x" * 1000)|list|length }}'),
    ("sum_lists", "{{ ([[1] * 100000] * 10)|sum(start=[])|length }}"),
    (
        "dictsort_big",
        '{{ {}.fromkeys(range(50000), "x" * 999)|dictsort|map("join")|join|length }}',
    ),
    ("groupby_big", '{{ range(100000)|map("center", 999)|groupby("0")|list|length }}'),
    ("items_big", '{{ {}.fromkeys(range(100000)|map("center", 999))|items|list|length }}'),
    ("escape_quotes", "{{ ('\"' * 999999)|e|length }}"),
    ("urlencode_emoji", '{{ ("\\U0001F600" * 999999)|urlencode|length }}'),
    ("xmlattr", '{{ {"a": \'"\' * 999999}|xmlattr|length }}'),
    ("title_words", '{{ ("ab " * 333333)|title|length }}'),
    ("wordcount_words", '{{ ("ab " * 333333)|wordcount }}'),
    ("striptags_tags", '{{ ("<a>xy" * 200000)|striptags|length }}'),
    # sorting and grouping long keys (lower-cased one by one, or compared n log n times)
    ("sort_lowercase", _BIG + "{{ ([s] * 50000)|sort|length }}"),
    ("groupby_lowercase", _BIG + "{{ ([[s]] * 50000)|groupby(0)|list|length }}"),
    ("dictsort_by_value", _BIG + '{{ {}.fromkeys(range(50000), s)|dictsort(by="value")|length }}'),
    ("unique_lowercase", _BIG + "{{ ([s] * 50000)|unique|list|length }}"),
    ("min_lowercase", _BIG + "{{ ([s] * 50000)|min|length }}"),
    ("max_attribute", _BIG + "{{ ([[s]] * 50000)|max(attribute=0)|length }}"),
    ("sort_case_sensitive", _TWO + "{{ ([s, t] * 25000)|sort(case_sensitive=true)|length }}"),
    (
        "sort_attribute",
        _TWO + "{{ ([[s], [t]] * 25000)|sort(attribute=0, case_sensitive=true)|length }}",
    ),
    # comparisons (they run in C, where the clock is not checked)
    ("eq_doubling", _DOUBLED + "{{ ns.a == ns.b }}"),
    ("ne_doubling", _DOUBLED + "{{ ns.a != ns.b }}"),
    ("lt_doubling", _DOUBLED + "{{ ns.a < ns.b }}"),
    ("chain_doubling", _DOUBLED + "{{ ns.a == ns.b == ns.a }}"),
    ("test_eq_doubling", _DOUBLED + "{{ ns.a is eq ns.b }}"),
    ("test_ge_doubling", _DOUBLED + "{{ ns.a is ge ns.b }}"),
    ("select_eq_doubling", _DOUBLED + '{{ [ns.a]|select("eq", ns.b)|list|length }}'),
    ("selectattr_doubling", _DOUBLED + '{{ [[ns.a]]|selectattr(0, "equalto", ns.b)|list|length }}'),
    ("in_doubling", _DOUBLED + "{{ ns.a in [ns.b] }}"),
    ("in_long_strings", _TWO + "{{ t in [s] * 50000 }}"),
    ("not_in_long_strings", _TWO + "{{ t not in [s] * 50000 }}"),
    ("test_in_long_strings", _TWO + "{{ t is in ([s] * 50000) }}"),
    ("reject_in_long_strings", _TWO + '{{ [t]|reject("in", [s] * 50000)|list|length }}'),
    ("list_count", _TWO + "{{ ([s] * 50000).count(t) }}"),
    ("list_index", _TWO + "{{ ([s] * 49999 + [t]).index(t) }}"),
    (
        "loop_changed_doubling",
        _DOUBLED + "{% for x in [ns.a, ns.b] %}{{ loop.changed(x) }}{% endfor %}",
    ),
    ("tuple_hash_doubling", _DOUBLED_TUPLE + "{{ ns.a in {} }}"),
    ("tuple_key_doubling", _DOUBLED_TUPLE + "{{ {}.get(ns.a) }}"),
    ("tuple_literal_key_doubling", _DOUBLED_TUPLE + "{{ {ns.a: 1}|length }}"),
    # str methods
    ("markup_striptags", '{{ (("<a>xy" * 200000)|safe).striptags()|length }}'),
    ("str_replace", '{{ ("a" * 5000).replace("a", "b" * 100000)|length }}'),
    ("str_ljust", '{{ "x".ljust(10**8)|length }}'),
    ("str_rjust", '{{ "x".rjust(10**8)|length }}'),
    ("str_center", '{{ "x".center(10**8)|length }}'),
    ("str_zfill", '{{ "1".zfill(10**8)|length }}'),
    ("str_expandtabs", '{{ ("\\t" * 100000).expandtabs(10000)|length }}'),
    ("str_join", '{{ ("x" * 100000).join(["y"] * 1000)|length }}'),
    ("str_format_width", "{{ '{:>100000000}'.format(1)|length }}"),
    ("str_format_nested_width", "{{ '{:>{}}'.format(1, 100000000)|length }}"),
    ("str_format_repeat", _BIG + "{{ ('{0}' * 1000).format(s)|length }}"),
    ("str_format_map", _BIG + "{{ ('{a}' * 1000).format_map({'a': s})|length }}"),
    ("str_translate", '{{ ("x" * 999999).translate({120: "y" * 1000})|length }}'),
    ("str_split", '{{ ("ab " * 333333).split()|length }}'),
    ("str_splitlines", '{{ ("ab\\n" * 333333).splitlines()|length }}'),
    ("str_encode", '{{ ("\\U0001F600" * 999999).encode("unicode_escape")|length }}'),
    ("int_to_bytes", '{{ (1).to_bytes(100000000, "big")|length }}'),
    # operators
    ("mul_chain", '{{ (("x" * 999999) * 2 * 2 * 2)|length }}'),
    ("mul_list_of_big", _BIG + "{{ ([s] * 100)|join|length }}"),
    ("percent_width", '{{ ("%0100000000d" % 1)|length }}'),
    ("percent_repeat", _BIG + '{{ (("%s" * 100) % (' + ", ".join(["s"] * 100) + "))|length }}"),
    ("percent_refs", _TEN + '{{ ("%s" % [t])|length }}'),
    ("concat_refs", _DEEP + '{{ (v ~ "")|length }}'),
    (
        "concat_accumulate",
        _BIG
        + "{% set ns = namespace(a=s) %}{% for i in range(1000) %}{% set ns.a = ns.a ~ s %}{% endfor %}{{ ns.a|length }}",
    ),
    (
        "plus_accumulate",
        "{% set ns = namespace(a=[]) %}{% for i in range(100000) %}{% set ns.a = ns.a + [i, i, i] %}{% endfor %}{{ ns.a|length }}",
    ),
    (
        "slice_accumulate",
        _BIG
        + "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + [s[i:]] %}{% endfor %}{{ ns.l|length }}",
    ),
    (
        "int_doubling",
        "{% set ns = namespace(x=1, l=none) %}{% for a in range(100000) %}{% set ns.x = ns.x - (0 - ns.x) %}{% set ns.l = [ns.l, ns.x] %}{% endfor %}x",
    ),
    (
        "literal_accumulate",
        "{% set ns = namespace(l=none) %}{% for a in range(1000) %}{% for b in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}{% endfor %}x",
    ),
    (
        "object_accumulate",
        "{% set ns = namespace(c=none) %}{% for a in range(1000) %}{% for b in range(1000) %}{% set ns.c = cycler(ns.c, b) %}{% endfor %}{% endfor %}x",
    ),
    (
        "compile_then_accumulate",
        "{{ candidate.first_name }}" * 1150
        + _BIG
        + "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + [s[i:]] %}{% endfor %}{{ ns.l|length }}",
    ),
    ("compile_too_complex", "{{ candidate.first_name }}" * 100000),
    ("pow_big", "{{ (2 ** 100000000)|string|length }}"),
    # blocks, loops, macros
    (
        "nested_loops",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}done",
    ),
    (
        "nested_loops_set_block",
        "{% set x %}{% for a in range(1000) %}{% for b in range(1000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}{% endset %}{{ x|length }}",
    ),
    (
        "filter_block",
        '{% filter replace("x", "y" * 1000) %}{% for a in range(100000) %}xxxxxxxxxx{% endfor %}{% endfilter %}',
    ),
    (
        "filter_block_upper",
        "{% filter upper|length %}{% for a in range(1000) %}{% for b in range(1000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}{% endfilter %}",
    ),
    (
        "macro_doubling",
        "{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% else %}xxxxxxxxxx{% endif %}{% endmacro %}{{ f(0)|length }}",
    ),
    ("macro_recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
    (
        "macro_fanout_time",
        "{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}",
    ),
    (
        "call_block",
        "{% macro m() %}{% for i in range(100000) %}{{ caller() }}{% endfor %}{% endmacro %}{% call m() %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endcall %}",
    ),
    (
        "self_block",
        "{% if false %}{% block a %}{% for i in range(1000) %}{% for j in range(1000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}{% endblock %}{% endif %}{{ self.a()|length }}",
    ),
    ("recursive_loop", "{% for x in [[1, [2]], [3]] recursive %}{{ loop([x, x, x]) }}{% endfor %}"),
    (
        "output_stream",
        "{% for a in range(100000) %}{% for b in range(100) %}{{ b }}{% endfor %}{% endfor %}",
    ),
    (
        "loop_time",
        "{% for a in range(100000) %}{% for b in range(100000) %}{{ a is divisibleby 3 }}{% endfor %}{% endfor %}",
    ),
]

# A function printed as a value shows its address (<function … at 0x…>): refused, not rendered.
CALLABLES: list[tuple[str, str]] = [
    ("format_map", "{{ ''.format_map }}"),
    ("upper", "{{ ''.upper }}"),
    ("range", "{{ range }}"),
    ("cycler", "{{ cycler }}"),
    ("macro", "{% macro m() %}{% endmacro %}{{ m }}"),
    ("joined", "{{ [''.upper]|join }}"),
    ("concatenated", "{{ ''.upper ~ '' }}"),
    ("formatted", "{{ '{0.upper}'.format('') }}"),
]
