class Settings:
    environment = "production"
