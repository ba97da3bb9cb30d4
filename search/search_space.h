// A search space of named dimensions (a choice among candidates, a float range, an integer
// range) and its points, as the samplers see them (numbers) and as trial logs and reports
// show them (JSON objects of the values).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slim::search {

// A dimension that only matters at points where another, categorical, dimension takes
// one candidate (hist_percent only for ptq_algo hist).
struct Condition {
  size_t dimension = 0;  // its index in the space
  std::string choice;    // the candidate, as the config spells it
};

struct Dimension {
  enum class Kind { kCategorical, kFloat, kInteger };
  std::string name;
  Kind kind = Kind::kCategorical;
  std::vector<std::string> choices;  // kCategorical: the candidates, as the config spells them
  double low = 0;                    // kFloat, kInteger: the inclusive bounds
  double high = 0;
  std::optional<Condition> only_when;  // unset: the dimension always matters
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

// Whether dimension `d` of `space` matters at `point` (its condition, if any, holds there).
bool Matters(const SearchSpace& space, size_t d, const Point& point);

// Whether points `a` and `b` are the same trial: equal in every dimension that matters at
// `a` (candidates and integers after rounding).
bool SameTrial(const SearchSpace& space, const Point& a, const Point& b);

// {"name": value, ...} with a candidate's text, a float or an integer.
nlohmann::json PointToJson(const SearchSpace& space, const Point& point);

// The inverse of PointToJson. Throws std::invalid_argument naming the dimension when a
// value is missing, not a candidate or outside its range.
Point PointFromJson(const SearchSpace& space, const nlohmann::json& values);

}  // namespace slim::search
