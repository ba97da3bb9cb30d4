// A search space of named dimensions (a choice among candidates, a float range, an integer
// range) and its points, as the samplers see them (numbers) and as trial logs and reports
// show them (JSON objects of the values).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace slim::search {

struct Dimension {
  enum class Kind { kCategorical, kFloat, kInteger };
  std::string name;
  Kind kind = Kind::kCategorical;
  std::vector<std::string> choices;  // kCategorical: the candidates, as the config spells them
  double low = 0;                    // kFloat, kInteger: the inclusive bounds
  double high = 0;
};

using SearchSpace = std::vector<Dimension>;

// One value per dimension, in the space's order: a candidate's index, a float, an integer.
using Point = std::vector<double>;

// A finished trial as the samplers learn from it. `objective` is minimised; a failed trial
// has +infinity.
struct Observation {
  int64_t trial = 0;
  Point point;
  double objective = 0;
};

// {"name": value, ...} with a candidate's text, a float or an integer.
nlohmann::json PointToJson(const SearchSpace& space, const Point& point);

// The inverse of PointToJson. Throws std::invalid_argument naming the dimension when a
// value is missing, not a candidate or outside its range.
Point PointFromJson(const SearchSpace& space, const nlohmann::json& values);

}  // namespace slim::search
