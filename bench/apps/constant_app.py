"""The framework limit: a bare FastAPI endpoint that returns a constant score."""

from fastapi import FastAPI

app = FastAPI()


@app.post("/evaluate")
async def evaluate() -> dict[str, float]:
    return {"score": 1.0}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
