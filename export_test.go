package latchkey

// FillPasswordGate takes every password slot and queue place of s, as a
// burst of logins would, until release is called.
func FillPasswordGate(s *Service) (release func()) {
	g := s.gate
	for range cap(g.slots) {
		g.slots <- struct{}{}
	}
	g.waiting.Add(g.maxWaiting)
	return func() {
		g.waiting.Add(-g.maxWaiting)
		for range cap(g.slots) {
			<-g.slots
		}
	}
}

// MaxRepeatKeys is how many keys AuditLog.RecordRepeated tracks at once.
const MaxRepeatKeys = maxRepeatKeys
