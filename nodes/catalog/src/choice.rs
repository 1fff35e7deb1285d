//! Params whose value is one of a fixed set of names, as Rust enums.
//!
//! [`choice!`](crate::choice) declares the enum and its names once; the names
//! feed the param's [`ParamType::Enum`](crate::ParamType::Enum) (what the
//! validator accepts and `runtime nodes` lists) and the node reads the
//! variant back with [`Params`](crate::Params) through [`Choice`].

/// An enum whose variants are the choices of a param.
pub trait Choice: Sized + Copy + 'static {
    /// Every name, in the order the variants are declared.
    const NAMES: &'static [&'static str];
    /// Every variant, in the same order as [`Choice::NAMES`].
    const ALL: &'static [Self];

    /// The name as written in a graph.
    fn name(self) -> &'static str;

    /// The variant of that name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }
}

/// Declares an enum whose variants are a param's choices, each with its name
/// as written in a graph:
///
/// ```
/// node_catalog::choice! {
///     /// How the tiles are laid out.
///     pub enum Layout { Grid = "grid", Pip = "pip" }
/// }
/// use node_catalog::Choice;
/// assert_eq!(Layout::NAMES, ["grid", "pip"]);
/// assert_eq!(Layout::from_name("pip"), Some(Layout::Pip));
/// assert_eq!(Layout::Grid.name(), "grid");
/// ```
///
/// The enum also gets `const fn name` (usable for a spec's default),
/// `Display`, and `Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord`
/// (variants order as declared).
#[macro_export]
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name as written in a graph.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl $crate::Choice for $name {
            const NAMES: &'static [&'static str] = $name::NAMES;
            const ALL: &'static [$name] = &[$($name::$variant),+];
            fn name(self) -> &'static str {
                $name::name(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Choice;

    crate::choice! {
        enum Fruit { Apple = "apple", BloodOrange = "blood-orange" }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(Fruit::NAMES, ["apple", "blood-orange"]);
        for f in Fruit::ALL {
            assert_eq!(Fruit::from_name(f.name()), Some(*f));
        }
        assert_eq!(Fruit::from_name("pear"), None);
        assert_eq!(Fruit::BloodOrange.to_string(), "blood-orange");
        assert!(Fruit::Apple < Fruit::BloodOrange);
    }
}
