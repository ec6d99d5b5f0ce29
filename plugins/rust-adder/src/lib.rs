//! rust-adder: a component of the ecosystem's own making (the component
//! model book's `docs:adder/add@0.1.0`, plus `shapes` for richer types),
//! built with plain `wit-bindgen` against its own WIT and no fuelhost
//! SDK: what an uploader brings from elsewhere. fuelhost invokes its
//! exports by name with JSON arguments.

wit_bindgen::generate!({ path: "wit", world: "adder" });

use exports::docs::adder::add::Guest as Add;
use exports::docs::adder::shapes::{Guest as Shapes, Point, Shape, Unit};

struct Adder;

impl Add for Adder {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
}

impl Shapes for Adder {
    fn area(s: Shape, u: Option<Unit>) -> Result<u64, String> {
        let square_metres = match s {
            Shape::Circle(r) => (std::f64::consts::PI * f64::from(r) * f64::from(r)) as u64,
            Shape::Rect(Point { x, y }) if x < 0 || y < 0 => {
                return Err(format!("a rectangle of {x} by {y} has no area"));
            }
            Shape::Rect(Point { x, y }) => x as u64 * y as u64,
            Shape::Empty => 0,
        };
        Ok(match u.unwrap_or(Unit::Metres) {
            Unit::Metres => square_metres,
            // 10.7639 square feet to the square metre.
            Unit::Feet => square_metres * 107_639 / 10_000,
        })
    }

    fn farthest(points: Vec<Point>) -> Option<Point> {
        points.into_iter().max_by_key(|p| i64::from(p.x).pow(2) + i64::from(p.y).pow(2))
    }

    fn spin() -> u32 {
        let mut n: u32 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
            if std::hint::black_box(n) == 0 {
                return n;
            }
        }
    }
}

export!(Adder);
