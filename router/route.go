package router

// Routes of a statement, what Session.Route reports (the label values of the proxy's
// statement metrics).
const (
	RouteLocal      = "local"       // answered by the proxy itself (SET, USE, SHOW PROCESSLIST, errors before routing)
	RouteSingle     = "single"      // sent to one shard
	RouteScatter    = "scatter"     // sent to several shards, results merged
	RouteMultiWrite = "multi_write" // a write spanning shards or slots (split INSERT, broadcast write, fan-out UPDATE/DELETE)
	RouteDDL        = "ddl"         // DDL fanned out to every physical copy of a table
)

// Route returns how the session's last command (COM_QUERY's last statement, or
// COM_STMT_EXECUTE) was routed. Like every Session method, call it from the session's
// goroutine only.
func (s *Session) Route() string {
	if s.route == "" {
		return RouteLocal
	}
	return s.route
}
