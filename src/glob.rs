//! Shell-style glob matching for names read from files vflag does not own (unit patterns in
//! `before`, udev `KERNEL==` values, NetworkManager `match.interface-name`, netplan `match`).
//!
//! `*` is any run of characters (also none), `?` one character, `[...]` one character of a set
//! (`a-z` ranges, `!` or `^` negates; an unclosed `[` is a literal). Greedy with one backtrack
//! point (the last `*`): a later `*` makes earlier choices irrelevant, so a match costs
//! O(len(pattern) * len(name)) at worst. Plain recursion is exponential in the number of `*`
//! (`a*a*a*...b` hung the boot in the generator; a udev rule is as easy to write).

/// One pattern element that matches a single character at `p[i]`: whether it matches `c`, and
/// the pattern index after it. `None` at a `*` or at the end.
fn single(p: &[char], i: usize, c: char) -> Option<(bool, usize)> {
    match *p.get(i)? {
        '*' => None,
        '?' => Some((true, i + 1)),
        '[' => match p[i + 1..].iter().skip(1).position(|&x| x == ']') {
            // The `]` right after `[` (or `[!`) is a member, as in fnmatch.
            Some(off) => {
                let end = i + 2 + off;
                let mut set = &p[i + 1..end];
                let neg = matches!(set.first(), Some('!' | '^'));
                if neg {
                    set = &set[1..];
                }
                let mut hit = false;
                let mut k = 0;
                while k < set.len() {
                    if k + 2 < set.len() && set[k + 1] == '-' {
                        hit |= set[k] <= c && c <= set[k + 2];
                        k += 3;
                    } else {
                        hit |= set[k] == c;
                        k += 1;
                    }
                }
                Some((hit != neg, end + 1))
            }
            None => Some((c == '[', i + 1)),
        },
        x => Some((x == c, i + 1)),
    }
}

/// Whether `name` matches the shell-style `pattern` as a whole.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // After the last `*` seen: the pattern index past it and the name index it resumes from.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if p.get(pi) == Some(&'*') {
            star = Some((pi + 1, ni));
            pi += 1;
            continue;
        }
        match single(&p, pi, n[ni]) {
            Some((true, next)) => {
                pi = next;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry after it.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    pi = sp;
                    ni = sn + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn stars_and_marks() {
        assert!(glob_match(
            "kolla-*-container.service",
            "kolla-nova-container.service"
        ));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "ac"));
        assert!(glob_match("*", "") && glob_match("**a*", "ba") && !glob_match("*?", ""));
        assert!(glob_match("*b*c", "abbbxc") && !glob_match("a*b", "ab*x"));
    }

    #[test]
    fn classes() {
        assert!(glob_match("ens3f[01]", "ens3f1") && !glob_match("ens3f[01]", "ens3f2"));
        assert!(!glob_match("ens3f[!01]", "ens3f1") && glob_match("ens3f[^01]", "ens3f2"));
        assert!(glob_match("eth[0-9]*", "eth12") && !glob_match("eth[0-9]", "ethx"));
        assert!(
            glob_match("a[]]b", "a]b"),
            "a `]` first in the set is a member"
        );
        assert!(glob_match("a[b", "a[b"), "an unclosed `[` is a literal");
        assert!(glob_match("*[a]*[a]*x", "baax") && !glob_match("*[a]*[a]*x", "bax"));
    }

    /// Many `*` and classes against a long name that does not match: exponential for a
    /// recursive matcher (the udev rule detector had one), immediate here.
    #[test]
    fn many_stars_stay_linear() {
        let name = "a".repeat(60);
        assert!(!glob_match(&format!("{}b", "*[a]".repeat(30)), &name));
        assert!(!glob_match(&format!("{}b", "a*".repeat(30)), &name));
        assert!(glob_match(&"*[a]".repeat(30), &name));
    }
}
