# Production image: Debian 12 (Python 3.11) with GDAL/GEOS/PROJ for GeoDjango.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gdal-bin libgdal32 libgeos-c1v5 libproj25 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_SECRET_KEY=build DATABASE_URL=postgis://x@localhost/x REDIS_URL=redis://localhost \
    python manage.py collectstatic --noinput -v 0
EXPOSE 8000
# gridgov.serve is daphne answering 414/431 to oversized requests instead of dropping them.
CMD ["python", "-m", "gridgov.serve", "-b", "0.0.0.0", "-p", "8000", "gridgov.asgi:application"]
