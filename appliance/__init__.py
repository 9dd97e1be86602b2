"""Genre-driven film appliance."""
