"""The include direction between layers (docs/design.md, "Layers"): a file may include
headers of its own layer and the layers below, never above. The CMake targets catch calls
upwards at link time; this catches header-only includes too."""
import os
import re
import sys
import unittest

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Folder prefix -> layer; a larger number is a higher layer. The first matching prefix wins.
LAYERS = [
    ("runtime/base/", 0),
    ("runtime/config/", 1),
    ("data/", 1),
    ("runtime/comm/", 1),
    ("runtime/ddp/", 1),
    ("runtime/checkpoint/", 1),
    ("runtime/models/", 1),
    ("strategies/", 2),
    ("export/", 2),
    ("runtime/engine/", 3),
    ("search/", 4),
    ("launcher/", 5),
    ("tools/", 5),
    ("bench/", 5),
]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def layer_of(path):
    for prefix, layer in LAYERS:
        if path.startswith(prefix):
            return layer
    return None


class Layering(unittest.TestCase):
    def test_no_file_includes_a_header_of_a_higher_layer(self):
        violations = []
        checked = 0
        for folder, _, files in os.walk(SOURCE_DIR):
            relative_folder = os.path.relpath(folder, SOURCE_DIR)
            if relative_folder.startswith(("build", ".git", "tests")):
                continue
            for name in files:
                if not name.endswith((".h", ".cpp")):
                    continue
                path = os.path.join(relative_folder, name)
                own = layer_of(path)
                if own is None:
                    continue
                checked += 1
                with open(os.path.join(SOURCE_DIR, path), encoding="utf-8") as f:
                    for header in INCLUDE.findall(f.read()):
                        other = layer_of(header)
                        if other is not None and other > own:
                            violations.append(f"{path} includes {header}")
        self.assertGreater(checked, 100, "the source tree was not found")
        self.assertEqual(violations, [])


if __name__ == "__main__":
    sys.exit(unittest.main())
