class Settings:
    environment = "production"
