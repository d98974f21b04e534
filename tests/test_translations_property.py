"""Property: across any sequence of English edits, updates and prunes, no translation is lost
unless pruned — and the files stay consistent."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from literate import translations
from literate.translations import Catalog

WORDS = ["the", "keys", "values", "sum", "window", "bias", "local", "token", "of", "each"]
paragraph = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6)
operation = st.one_of(
    st.tuples(st.just("edit"), st.integers(0, 20), paragraph),
    st.tuples(st.just("insert"), st.integers(0, 20), paragraph),
    st.tuples(st.just("delete"), st.integers(0, 20), st.just(None)),
    st.tuples(st.just("translate"), st.integers(0, 20), st.just(None)),
    st.tuples(st.just("update"), st.just(0), st.just(None)),
    st.tuples(st.just("prune"), st.just(0), st.just(None)),
    st.tuples(st.just("write and read"), st.just(0), st.just(None)),
)


def keys_of(paragraphs: list[list[str]]) -> list[str]:
    return list(dict.fromkeys(f"<p>{' '.join(words)}</p>\n" for words in paragraphs))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(start=st.lists(paragraph, min_size=1, max_size=8), operations=st.lists(operation,
                                                                               max_size=30))
def test_no_translation_is_lost_unless_pruned(tmp_path_factory, start, operations):
    folder: Path = tmp_path_factory.mktemp("prop")
    paragraphs = [list(p) for p in start]
    catalog = Catalog(folder / "page.json")
    translations.update(catalog, keys_of(paragraphs))
    alive: set[str] = set()  # every translation given and not pruned
    counter = 0
    for action, index, words in operations:
        if action == "edit" and paragraphs:
            paragraphs[index % len(paragraphs)] = list(words)
        elif action == "insert":
            paragraphs.insert(index % (len(paragraphs) + 1), list(words))
        elif action == "delete" and paragraphs:
            del paragraphs[index % len(paragraphs)]
        elif action == "translate":
            empty = [k for k, v in sorted(catalog.strings.items()) if not v]
            if empty:
                counter += 1
                catalog.strings[empty[index % len(empty)]] = f"<p>පරිවර්තනය {counter}</p>\n"
                alive.add(f"<p>පරිවර්තනය {counter}</p>\n")
        elif action == "update":
            translations.update(catalog, keys_of(paragraphs))
            current = keys_of(paragraphs)
            assert all(k in catalog.strings for k in current)
            for key, record in catalog.stale.items():
                assert catalog.strings[key] == record["translation"]
                assert record["english"] != key
        elif action == "prune":
            current = set(keys_of(paragraphs))
            alive -= {v for k, v in catalog.strings.items() if k not in current}
            translations.prune(catalog, keys_of(paragraphs))
        else:
            catalog.write()
            catalog = Catalog.read(folder / "page.json")
        kept = set(catalog.strings.values()) - {""}
        assert kept == alive  # nothing lost, nothing invented
        assert len([v for v in catalog.strings.values() if v]) == len(alive)  # no duplicates
