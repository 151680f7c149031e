package sandbox

// Crash makes m behave like a sidecar that died: it lets go of every
// agent connection and stops, removing nothing.
func (m *Manager) Crash() {
	m.mu.Lock()
	m.closed = true
	for _, b := range m.boxes {
		if b.agent != nil {
			b.agent.close(true)
		}
	}
	m.mu.Unlock()
	m.cancel()
}
