package barrier

import "testing"

// TestSplitSetStatement: SET STATEMENT ... FOR is cut at its first FOR outside quotes and
// parentheses, not qualified; a comment before it leaves the text unread.
func TestSplitSetStatement(t *testing.T) {
	for _, tc := range []struct {
		sql, assign, stmt string
		ok                bool
	}{
		{"SET STATEMENT max_statement_time=1 FOR SELECT 1", "max_statement_time=1", "SELECT 1", true},
		{"  set statement a='for', b=(1) for\nselect 2", "a='for', b=(1)", "select 2", true},
		{"SET STATEMENT a=`for` FOR SELECT 1", "a=`for`", "SELECT 1", true},
		{"SET STATEMENT a=1 /* FOR */ FOR SELECT 1", "", "", false},
		{"SET STATEMENT a=1", "", "", false},
		{"SET a=1", "", "", false},
		{"SET STATEMENT t.for=1 FOR SELECT 1", "t.for=1", "SELECT 1", true},
	} {
		a, st, ok := SplitSetStatement(tc.sql)
		if a != tc.assign || st != tc.stmt || ok != tc.ok {
			t.Errorf("SplitSetStatement(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, a, st, ok, tc.assign, tc.stmt, tc.ok)
		}
	}
}

// TestResolveComments: MariaDB's executable comments become the text a MariaDB 10.11.0
// runs; where quoting cannot be judged, they are refused.
func TestResolveComments(t *testing.T) {
	for _, tc := range []struct {
		mode, sql, want string
		ok              bool
	}{
		{"", "SELECT 1", "SELECT 1", true},
		{"", "SELECT 1 /* plain */", "SELECT 1 /* plain */", true},
		{"", "SELECT 1 /*!40101 , 2 */", "SELECT 1 /*!40101 , 2 */", true},
		{"", "SELECT 1 /*M!, 2 */", "SELECT 1  , 2  ", true},
		{"", "/*M!100616 SET @a = 1 */", "  SET @a = 1  ", true},
		{"", "/*M!101100 SET @a = 1 */", "  SET @a = 1  ", true},
		{"", "/*M!101101 SET @a = 1 */", " ", true},
		{"", "/*M!999999 enable the sandbox mode */ \n/*!40101 SET @x=1 */", "  \n/*!40101 SET @x=1 */", true},
		{"", "SELECT '/*M! x */'", "", false},
		{"", "SELECT 'it''s', \"a\\\"\" /*M! , 2 */", "SELECT 'it''s', \"a\\\"\"   , 2  ", true},
		{"", "SELECT 1 /*M! unterminated", "", false},
		{"'ANSI_QUOTES'", "SELECT 1 /*M!, 2 */", "", false},
		{"'NO_BACKSLASH_ESCAPES'", "SELECT 1 /*M!, 2 */", "", false},
		{"'ANSI_QUOTES'", "SELECT 1", "SELECT 1", true},
	} {
		got, err := Facts{SQLMode: tc.mode}.Text(tc.sql)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("mode %s: Text(%q) = %q, %v; want %q, ok %v", tc.mode, tc.sql, got, err, tc.want, tc.ok)
		}
	}
}
